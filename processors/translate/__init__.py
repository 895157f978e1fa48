"""Translation: the Translator contract, its providers and the glossary."""
