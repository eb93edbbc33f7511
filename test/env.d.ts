/** Bindings that exist only in the test configuration (vitest.config.ts). */
declare namespace Cloudflare {
  interface Env {
    STRICT_TOKEN_RATE_LIMITER: RateLimit;
    STRICT_PHONE_RATE_LIMITER: RateLimit;
    STRICT_REFUSAL_RATE_LIMITER: RateLimit;
    STRICT_REFUSAL_SUMMARY_LIMITER: RateLimit;
    STRICT_REVIEW_RATE_LIMITER: RateLimit;
  }
}
