import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { MAX_BODY_BYTES } from "../src/users/changes.ts";
import { expectProblem, mint, patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

let token: string;
beforeAll(async () => {
  token = await mint(["users:write"]);
});

/** The last path segment of the one upstream call, decoded once. */
const forwardedEmail = (calls: { url: string }[]) => {
  expect(calls).toHaveLength(1);
  return decodeURIComponent(new URL(calls[0].url).pathname.split("/").pop() ?? "");
};

/** A PATCH with a raw body and exactly the headers given (plus the token). */
const patchRaw = (body: BodyInit | null, headers: Record<string, string> = {}) =>
  send("/users/ada@example.com", {
    method: "PATCH",
    headers: { Authorization: `Bearer ${token}`, ...headers },
    body,
  });

describe("the email in the path", () => {
  const local64 = "a".repeat(64);
  // 63 + 1 + 63 + 1 + 57 + 4 = 189 characters: with a 64-character local part, 254 in all.
  const domain189 = `${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(57)}.com`;

  it("keeps the local part as given and lowercases the domain, everywhere", async () => {
    const calls = spyUpstream();
    const res = await patchUser("Ada.Lovelace+Tag@EXAMPLE.Com", { first_name: "Ada" }, token);
    expect(res.status).toBe(202);
    expect(((await res.json()) as { email: string }).email).toBe("Ada.Lovelace+Tag@example.com");
    expect(forwardedEmail(calls)).toBe("Ada.Lovelace+Tag@example.com");
  });

  it("accepts the longest address (254 characters, 64 in the local part)", async () => {
    const email = `${local64}@${domain189}`;
    expect(email).toHaveLength(254);
    const calls = spyUpstream();
    expect((await patchUser(email, { first_name: "A" }, token)).status).toBe(202);
    expect(forwardedEmail(calls)).toBe(email);
  });

  it("accepts dot-atom specials, a punycode domain and an encoded @", async () => {
    for (const [given, expected] of [
      ["o'brien@example.com", "o'brien@example.com"],
      ["a_b-c~d*e=f^g{h}i|j@example.com", "a_b-c~d*e=f^g{h}i|j@example.com"],
      ["ada@xn--exmple-cua.com", "ada@xn--exmple-cua.com"],
      ["ada%40example.com", "ada@example.com"],
    ]) {
      const calls = spyUpstream();
      const res = await patchUser(given, { first_name: "A" }, token);
      expect(res.status, given).toBe(202);
      expect(forwardedEmail(calls), given).toBe(expected);
      vi.restoreAllMocks();
    }
  });

  it.each([
    ["too long in total (255)", () => `${local64}@a${domain189}`],
    ["a local part of 65", () => `${"a".repeat(65)}@example.com`],
    ["no @", () => "ada.example.com"],
    ["an empty local part", () => "@example.com"],
    ["an empty domain", () => "ada@"],
    ["two @", () => "a@b@example.com"],
    ["a single-label domain", () => "ada@localhost"],
    ["a domain label starting with a dash", () => "ada@-example.com"],
    ["an empty domain label", () => "ada@example..com"],
    ["a numeric TLD", () => "ada@10.0.0.1"],
    ["an address literal", () => "ada@[127.0.0.1]"],
    ["an underscore in the domain", () => "ada@ex_ample.com"],
    ["a label of 64 characters", () => `ada@${"x".repeat(64)}.com`],
    ["a leading dot", () => ".ada@example.com"],
    ["a trailing dot in the local part", () => "ada.@example.com"],
    ["two dots in a row", () => "a..da@example.com"],
    ["non-ASCII in the local part", () => "jos%C3%A9@example.com"],
    ["non-ASCII in the domain (not punycode)", () => "ada@ex%C3%A4mple.com"],
    ["quotes", () => "%22ada%20l%22@example.com"],
    ["a space", () => "ada%20l@example.com"],
    ["a comma", () => "ada,l@example.com"],
    ["parentheses (a comment)", () => "ada(x)@example.com"],
    ["NUL", () => "ada%00@example.com"],
    ["CR LF", () => "ada%0d%0aX-Injected:1@example.com"],
    ["a tab", () => "ada%09@example.com"],
    ["DEL", () => "ada%7F@example.com"],
    ["a C1 control", () => "ada%C2%85@example.com"],
    ["a trailing dot on the domain", () => "ada@example.com."],
  ])("refuses %s: 400 invalid-email, nothing forwarded", async (_name, email) => {
    const calls = spyUpstream();
    const res = await patchUser(email(), { first_name: "A" }, token);
    await expectProblem(res, 400, "invalid-email");
    expect(calls).toHaveLength(0);
  });
});

describe("the content type", () => {
  it.each([
    ["missing", undefined],
    ["text/plain", "text/plain"],
    ["text/plain with charset", "text/plain;charset=UTF-8"],
    ["application/json-patch+json", "application/json-patch+json"],
    ["application/merge-patch+json", "application/merge-patch+json"],
    ["form data", "application/x-www-form-urlencoded"],
    ["multipart", "multipart/form-data; boundary=x"],
    ["application/jsonp", "application/jsonp"],
    ["JSON with another charset", "application/json; charset=latin1"],
    ["JSON with an extra parameter", "application/json; foo=bar"],
    ["a list of types", "application/json, text/plain"],
  ])("refuses %s with 415 and Accept-Patch", async (_name, type) => {
    const calls = spyUpstream();
    // A byte body so that fetch adds no Content-Type of its own.
    const res = await patchRaw(
      new TextEncoder().encode('{"first_name":"Ada"}'),
      type ? { "Content-Type": type } : {},
    );
    await expectProblem(res, 415, "unsupported-media-type");
    expect(res.headers.get("Accept-Patch")).toBe("application/json");
    expect(calls).toHaveLength(0);
  });

  it.each([
    "application/json",
    "Application/JSON",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    'application/json; charset="utf-8"',
  ])("accepts %s", async (type) => {
    const calls = spyUpstream();
    const res = await patchRaw('{"first_name":"Ada"}', { "Content-Type": type });
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
  });
});

describe("the body size", () => {
  /** A valid change padded with JSON whitespace to exactly `bytes` bytes. */
  const padded = (bytes: number) => {
    const core = '{"first_name":"Ada"';
    return `${core}${" ".repeat(bytes - core.length - 1)}}`;
  };

  it(`accepts exactly ${MAX_BODY_BYTES} bytes`, async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", padded(MAX_BODY_BYTES), token);
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("refuses one byte more with 413 (declared Content-Length)", async () => {
    const calls = spyUpstream();
    const body = padded(MAX_BODY_BYTES + 1);
    const res = await patchUser("ada@example.com", body, token);
    await expectProblem(res, 413, "payload-too-large");
    expect(calls).toHaveLength(0);
  });

  it("refuses a huge body by its Content-Length", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", padded(1024 * 1024), token);
    await expectProblem(res, 413, "payload-too-large");
    expect(calls).toHaveLength(0);
  });

  /** A streamed body without a length: `chunks` pieces of `size` bytes of JSON. */
  const stream = (chunks: number, size: number, pulled: { count: number }) => {
    const encoder = new TextEncoder();
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled.count++;
        if (sent === 0) controller.enqueue(encoder.encode('{"first_name":"Ada"'));
        if (sent < chunks) controller.enqueue(encoder.encode(" ".repeat(size)));
        else {
          controller.enqueue(encoder.encode("}"));
          controller.close();
        }
        sent++;
      },
    });
  };

  it("refuses a streamed body without a length once it passes the cap, without reading it all", async () => {
    const calls = spyUpstream();
    const pulled = { count: 0 };
    const req = new Request("https://x.test", { method: "PATCH", body: stream(1, 1, { count: 0 }) });
    expect(req.headers.get("Content-Length")).toBeNull();
    const res = await patchRaw(stream(1000, 1024, pulled), { "Content-Type": "application/json" });
    await expectProblem(res, 413, "payload-too-large");
    expect(pulled.count).toBeLessThan(100);
    expect(calls).toHaveLength(0);
  });

  it("accepts a small streamed body without a length", async () => {
    const calls = spyUpstream();
    const res = await patchRaw(stream(2, 100, { count: 0 }), { "Content-Type": "application/json" });
    expect(res.status).toBe(202);
    expect(JSON.parse(calls[0].body)).toEqual({ first_name: "Ada" });
  });
});

describe("the body's syntax", () => {
  it.each([
    ["an empty body", ""],
    ["a truncated object", '{"first_name":"Ada"'],
    ["single quotes", "{'first_name':'Ada'}"],
    ["trailing garbage", '{"first_name":"Ada"} x'],
    ["a trailing comma", '{"first_name":"Ada",}'],
    ["a comment", '{"first_name":"Ada" /* hi */}'],
    ["NaN", '{"first_name":NaN}'],
  ])("refuses %s with 400 malformed-json", async (_name, body) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", body, token);
    await expectProblem(res, 400, "malformed-json");
    expect(calls).toHaveLength(0);
  });

  it("accepts a UTF-8 byte order mark before the JSON", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", '\ufeff{"first_name":"Ada"}', token);
    expect(res.status).toBe(202);
    expect(JSON.parse(calls[0].body)).toEqual({ first_name: "Ada" });
  });

  it("refuses invalid UTF-8 with 400", async () => {
    const calls = spyUpstream();
    // {"first_name":"A<0xff>"}
    const bytes = new Uint8Array([...new TextEncoder().encode('{"first_name":"A'), 0xff, 0x22, 0x7d]);
    const res = await patchRaw(bytes, { "Content-Type": "application/json" });
    const body = await expectProblem(res, 400, "malformed-json");
    expect(body.detail).toBe("The body is not valid UTF-8.");
    expect(calls).toHaveLength(0);
  });

  it.each([
    ["a lone high surrogate", '{"first_name":"A\\ud800"}'],
    ["a lone low surrogate", '{"last_name":"\\udc00B"}'],
    ["reversed surrogates", '{"first_name":"\\ude00\\ud83d"}'],
  ])("refuses %s (valid JSON, not Unicode text) in a name", async (_name, body) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", body, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([expect.objectContaining({ detail: "Must be valid Unicode text." })]);
    expect(calls).toHaveLength(0);
  });

  it("accepts an escaped surrogate pair (an emoji)", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", '{"first_name":"\\ud83d\\ude00"}', token);
    expect(res.status).toBe(202);
    expect(JSON.parse(calls[0].body)).toEqual({ first_name: "😀" });
  });
});

describe("the body's shape", () => {
  it.each([
    ["an array", "[]"],
    ["an array of a change", '[{"first_name":"Ada"}]'],
    ["a string", '"Ada"'],
    ["a number", "42"],
    ["null", "null"],
    ["true", "true"],
  ])("refuses %s as the body with 400 validation-failed on the whole body", async (_name, body) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", body, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([expect.objectContaining({ field: "", pointer: "" })]);
    expect(calls).toHaveLength(0);
  });

  it("refuses an empty object, naming the fields that could be sent", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", {}, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([
      {
        field: "",
        pointer: "",
        detail: "At least one of first_name, last_name, phone_number is required.",
      },
    ]);
    expect(calls).toHaveLength(0);
  });

  it.each([
    ["an unknown key", '{"first_name":"Ada","email":"x@evil.test"}', "email"],
    ["__proto__", '{"first_name":"Ada","__proto__":{"admin":true}}', "__proto__"],
    ["constructor", '{"first_name":"Ada","constructor":{"prototype":{}}}', "constructor"],
    ["a key with a slash", '{"first_name":"Ada","a/b~c":1}', "a/b~c"],
  ])("refuses %s instead of dropping it", async (_name, body, key) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", body, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toContainEqual(
      expect.objectContaining({
        field: key,
        pointer: `/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`,
      }),
    );
    expect(calls).toHaveLength(0);
  });

  it("refuses __proto__ alone (no valid field beside it)", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", '{"__proto__":{"first_name":"Ada"}}', token);
    await expectProblem(res, 400, "validation-failed");
    expect(calls).toHaveLength(0);
  });

  it.each([
    ["null", null],
    ["a number", 42],
    ["a boolean", true],
    ["an object", { value: "Ada" }],
    ["an array", ["Ada"]],
  ])("refuses %s as a field value, naming the field", async (_name, value) => {
    for (const field of ["first_name", "last_name", "phone_number"]) {
      const calls = spyUpstream();
      const res = await patchUser("ada@example.com", { [field]: value }, token);
      const problem = await expectProblem(res, 400, "validation-failed");
      const detail =
        value === null ? "null is not allowed; leave the field out to keep it." : "Must be a string.";
      expect(problem.errors).toEqual([{ field, pointer: `/${field}`, detail }]);
      expect(calls).toHaveLength(0);
      vi.restoreAllMocks();
    }
  });

  it("reports every bad field at once", async () => {
    const calls = spyUpstream();
    const res = await patchUser(
      "ada@example.com",
      { first_name: "", last_name: null, phone_number: "555", extra: 1 },
      token,
    );
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors?.map((e) => e.field).sort()).toEqual([
      "extra",
      "first_name",
      "last_name",
      "phone_number",
    ]);
    expect(calls).toHaveLength(0);
  });
});

describe("names", () => {
  const forwarded = async (value: string) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { last_name: value }, token);
    expect(res.status, JSON.stringify(value)).toBe(202);
    const sent = JSON.parse(calls[0].body).last_name as string;
    expect(((await res.json()) as { changes: { last_name: string } }).changes.last_name).toBe(sent);
    vi.restoreAllMocks();
    return sent;
  };

  it("are trimmed", async () => {
    expect(await forwarded("  Lovelace \t")).toBe("Lovelace");
  });

  it("are normalized to NFC", async () => {
    const decomposed = "Mu\u0308ller"; // u + combining diaeresis
    expect(await forwarded(decomposed)).toBe("M\u00fcller");
  });

  it("keep any script", async () => {
    for (const name of ["山田", "محمد", "Ελένη", "Даша", "🙂", "O'Brien-Smith Jr.", "👩‍👩‍👧"]) {
      expect(await forwarded(name)).toBe(name);
    }
  });

  it("count code points, not UTF-16 units: 100 emoji pass, 101 characters do not", async () => {
    expect(await forwarded("🙂".repeat(100))).toBe("🙂".repeat(100));
    expect(await forwarded("a".repeat(100))).toBe("a".repeat(100));
    for (const value of ["🙂".repeat(101), "a".repeat(101)]) {
      const calls = spyUpstream();
      const res = await patchUser("ada@example.com", { last_name: value }, token);
      const problem = await expectProblem(res, 400, "validation-failed");
      expect(problem.errors).toEqual([
        { field: "last_name", pointer: "/last_name", detail: "Must be at most 100 characters." },
      ]);
      expect(calls).toHaveLength(0);
      vi.restoreAllMocks();
    }
  });

  it.each([
    ["empty", ""],
    ["only spaces", "   "],
    ["NUL inside", "A\u0000B"],
    ["a newline inside", "Ada\nLovelace"],
    ["a tab inside", "Ada\tLovelace"],
    ["an escape", "Ada\u001b[31m"],
    ["DEL", "Ada\u007f"],
    ["a C1 control", "Ada\u0085x"],
    ["a line separator inside", "Ada\u2028L"],
    ["a right-to-left override", "\u202eecilA"],
    ["a left-to-right embedding", "A\u202ada"],
    ["a first-strong isolate", "A\u2068da\u2069"],
  ])("refuse %s with the field named", async (_name, value) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { first_name: value }, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([
      expect.objectContaining({ field: "first_name", pointer: "/first_name" }),
    ]);
    expect(calls).toHaveLength(0);
  });
});

describe("phone numbers", () => {
  it.each([
    ["+12025550143", "+12025550143"],
    ["+1 202 555 0143", "+12025550143"],
    ["+1-202-555-0143", "+12025550143"],
    ["+1 (202) 555-0143", "+12025550143"],
    ["+1.202.555.0143", "+12025550143"],
    ["  +1 202 555 0143  ", "+12025550143"],
    ["+44 20 7123 4567", "+442071234567"],
    ["+81 3-1234-5678", "+81312345678"],
    ["+971 4 123 4567", "+97141234567"],
  ])("normalizes %s to E.164 %s, and forwards that", async (given, e164) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { phone_number: given }, token);
    expect(res.status).toBe(202);
    expect(JSON.parse(calls[0].body)).toEqual({ phone_number: e164 });
    expect(await res.json()).toMatchObject({ changes: { phone_number: e164 } });
  });

  it.each([
    ["no +", "12025550143"],
    ["a national number", "(202) 555-0143"],
    ["a 00 prefix", "0012025550143"],
    ["letters", "+1 202 555 CALL"],
    ["an extension written ext.", "+1 202 555 0143 ext. 12"],
    ["an extension written x", "+1 202 555 0143 x12"],
    ["an RFC 3966 extension", "+12025550143;ext=12"],
    ["a tel: URI", "tel:+12025550143"],
    ["fullwidth digits", "+１ ２０２ ５５５ ０１４３"],
    ["a fullwidth plus", "＋12025550143"],
    ["Arabic-Indic digits", "+١ ٢٠٢ ٥٥٥ ٠١٤٣"],
    ["Eastern Arabic-Indic digits", "+۱۲۰۲۵۵۵۰۱۴۳"],
    ["two plus signs", "++12025550143"],
    ["a slash", "+1 202/555 0143"],
    ["empty", ""],
    ["a newline inside", "+1 202\n555 0143"],
  ])("refuses %s with the field named", async (_name, value) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { phone_number: value }, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([
      {
        field: "phone_number",
        pointer: "/phone_number",
        detail: "Must be a phone number in international format, such as +15555555555.",
      },
    ]);
    expect(calls).toHaveLength(0);
  });
});

describe("phone numbers in international format that are not possible say why", () => {
  it.each([
    ["too short for the country", "+44 123", "Too short for a +44 (GB) phone number."],
    ["one digit after the calling code", "+44 1", "Too short for a +44 (GB) phone number."],
    ["too short for NANP", "+1 202", "Too short for a +1 (US) phone number."],
    ["too long for NANP", "+1 202 555 0143 12345", "Too long for a +1 (US) phone number."],
    ["too long for the country", "+49 30 1234 5678 9012 3456", "Too long for a +49 (DE) phone number."],
    [
      "a length the country does not use",
      "+44 20 7946 09",
      "Not a possible length for a +44 (GB) phone number.",
    ],
    [
      "an unknown country code",
      "+999 123 4567",
      "Must start with a known country calling code, such as +1 or +44.",
    ],
  ])("refuses %s: %s", async (_name, value, detail) => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { phone_number: value }, token);
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors).toEqual([{ field: "phone_number", pointer: "/phone_number", detail }]);
    expect(calls).toHaveLength(0);
  });
});

describe("what the caller sent is not what is forwarded", () => {
  it("forwards the rebuilt body with only validated fields in a fixed order", async () => {
    const calls = spyUpstream();
    const res = await patchUser(
      "ada@example.com",
      '{"phone_number":" +1 202 555 0143 ","last_name":" Byron ","first_name":"Ada"}',
      token,
    );
    expect(res.status).toBe(202);
    expect(calls[0].body).toBe('{"first_name":"Ada","last_name":"Byron","phone_number":"+12025550143"}');
    expect(new URL(calls[0].url).origin).toBe(new URL(env.VILLAGE_API_BASE).origin);
  });
});
