/**
 * A tiny stand-in identity provider for local demos and browser tests: generates an RS256 and
 * an ES256 key pair with WebCrypto, serves their public JWKS at `/jwks.json` on 127.0.0.1,
 * and signs JWTs. It is NOT a sign-in service: there is no login, it signs whatever it is
 * asked to. Run: `node fakes/test-idp.ts [--port 8789] [--email ada@example.com]`.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { argValue as arg, closeServer, isMain } from "../scripts/lib/cli.ts";

export interface TestIdp {
  /** Base URL, also the issuer (`iss`) of every JWT it signs. */
  url: string;
  jwksUrl: string;
  issuer: string;
  audience: string;
  /** How many times the JWKS was fetched. */
  jwksRequests(): number;
  /** Signs `claims` on top of valid defaults (iss, aud, iat, exp in 10 minutes, email_verified). */
  sign(
    claims: { sub: string; email?: string } & Record<string, unknown>,
    alg?: "RS256" | "ES256",
  ): Promise<string>;
  close(): Promise<void>;
}

const b64url = (bytes: Uint8Array | string): string =>
  Buffer.from(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes).toString("base64url");

const PARAMS = {
  RS256: {
    gen: {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    sign: { name: "RSASSA-PKCS1-v1_5" },
  },
  ES256: { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } },
} as const;

/** Starts the stand-in identity provider on 127.0.0.1 (port 0 = random). */
export async function startTestIdp(opts: { port?: number; audience?: string } = {}): Promise<TestIdp> {
  const keys = new Map<"RS256" | "ES256", { kid: string; privateKey: CryptoKey; jwk: JsonWebKey }>();
  for (const alg of ["RS256", "ES256"] as const) {
    const pair = (await crypto.subtle.generateKey(PARAMS[alg].gen, false, [
      "sign",
      "verify",
    ])) as CryptoKeyPair;
    const kid = `${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}`;
    const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
    keys.set(alg, { kid, privateKey: pair.privateKey, jwk: { ...jwk, kid, alg, use: "sig" } as JsonWebKey });
  }
  const jwks = JSON.stringify({ keys: [...keys.values()].map((k) => k.jwk) });
  let served = 0;
  const server = createServer((req, res) => {
    req.resume();
    if (req.method === "GET" && req.url === "/jwks.json") {
      served++;
      res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=600" });
      res.end(jwks);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const audience = opts.audience ?? "village-edge";
  return {
    url,
    jwksUrl: `${url}jwks.json`,
    issuer: url,
    audience,
    jwksRequests: () => served,
    async sign(claims, alg = "RS256") {
      const key = keys.get(alg);
      if (!key) throw new Error(`no ${alg} key`);
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ alg, typ: "JWT", kid: key.kid }));
      const payload = b64url(
        JSON.stringify({
          iss: url,
          aud: audience,
          iat: now,
          exp: now + 600,
          email_verified: true,
          ...claims,
        }),
      );
      const input = new TextEncoder().encode(`${header}.${payload}`);
      const sig = await crypto.subtle.sign(PARAMS[alg].sign, key.privateKey, input);
      return `${header}.${payload}.${b64url(new Uint8Array(sig))}`;
    },
    close: () => closeServer(server),
  };
}

if (isMain(import.meta.url)) {
  const idp = await startTestIdp({ port: Number(arg("port") ?? 8789) });
  const email = arg("email") ?? "ada@example.com";
  console.log(`[test-idp] JWKS: ${idp.jwksUrl}`);
  console.log(
    `[test-idp] Worker vars: AUTH_JWKS_URL=${idp.jwksUrl} AUTH_ISSUER=${idp.issuer} AUTH_AUDIENCE=${idp.audience}`,
  );
  console.log(
    `[test-idp] JWT for ${email} (10 minutes):\n${await idp.sign({ sub: `demo-${email}`, email })}`,
  );
  const stop = () => void idp.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
