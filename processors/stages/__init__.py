"""The stages of the image-translation pipeline and the task they share."""
