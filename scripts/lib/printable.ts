/**
 * Terminal-safe text for the CLIs that print the audit trail (DESIGN invariant 9, defence in
 * depth: the Worker already stores caller text inert). No imports, so the workerd tests can
 * hold it to its promise.
 */

/** C0 and C1 controls, DEL, line/paragraph separators and bidi controls: what can steer a terminal. */
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/** What JSON.stringify leaves raw in strings (it escapes C0 itself; its own line breaks must stay). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

const escaped = (ch: string): string => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** Text with every control or bidi character shown as its `\uXXXX` escape. */
export const printable = (text: string): string => text.replace(UNSAFE, escaped);

/**
 * JSON for a terminal: `JSON.stringify` escapes C0 controls but leaves C1, DEL and bidi
 * controls raw; this escapes them too (the output is still the same JSON value).
 */
export const printableJson = (value: unknown, indent = 2): string =>
  JSON.stringify(value, null, indent).replace(UNSAFE_IN_JSON, escaped);
