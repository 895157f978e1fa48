// The JSON merge patch (RFC 7396) that turns one payload into another.

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The patch turning ``before`` into ``after``; throws where a merge patch cannot say it (a null value). */
export function mergeDiff(before, after, path = "") {
  if (!isObject(before) || !isObject(after)) {
    refuseNull(after, path);
    return after;
  }
  const patch = {};
  for (const key of Object.keys(before)) {
    if (!(key in after)) patch[key] = null;
  }
  for (const [key, value] of Object.entries(after)) {
    const where = path ? `${path}.${key}` : key;
    if (!(key in before)) {
      refuseNull(value, where);
      patch[key] = value;
    } else if (!same(before[key], value)) {
      patch[key] = isObject(before[key]) && isObject(value) ? mergeDiff(before[key], value, where) : checked(value, where);
    }
  }
  return patch;
}

function checked(value, where) {
  refuseNull(value, where);
  return value;
}

function refuseNull(value, where) {
  if (value === null) throw new Error(`${where || "payload"}: a merge patch cannot set null (null removes a field)`);
  if (isObject(value)) for (const [k, v] of Object.entries(value)) refuseNull(v, `${where}.${k}`);
}
