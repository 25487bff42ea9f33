// Parsing of numeric command-line values, with errors that name the flag and echo what was given.

export function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

export function nonNegInt(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < 0)
    throw new Error(`${flag} must be a non-negative integer, got "${value}"`);
  return n;
}

export function positiveNumber(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number, got "${value}"`);
  return n;
}

/** A TCP port; 0 asks the system for a free one. */
export function port(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${flag} must be an integer in [0, 65535], got "${value}"`);
  return n;
}

export function nonNegNumber(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0)
    throw new Error(`${flag} must be a non-negative number, got "${value}"`);
  return n;
}

/** A number in [0, 1], or in (0, 1] when zero is excluded (a probability mass such as top-p). */
export function unitInterval(flag: string, value: string, excludeZero = false): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || n > 1 || (excludeZero && n === 0))
    throw new Error(`${flag} must be a number in ${excludeZero ? "(0, 1]" : "[0, 1]"}, got "${value}"`);
  return n;
}

/** One of a fixed set of words. */
export function choice<T extends string>(flag: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value))
    throw new Error(`${flag} must be one of ${choices.join(", ")}, got "${value}"`);
  return value as T;
}
