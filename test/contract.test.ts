/**
 * The contract check itself (test/contract.ts; test/summary-reporter.ts runs it on the whole
 * suite's observations): it names each undocumented (operation, status, type), and passes what
 * the document lists.
 */
import { describe, expect, it } from "vitest";
import document from "../src/meta/openapi.json";
import { type Observation, undocumented } from "./contract.ts";

const seen = (
  method: string,
  path: string,
  status: number,
  type = "application/problem+json",
): Observation => ({
  method,
  path,
  status,
  type,
});

describe("the contract check", () => {
  it("passes documented answers: a status of an operation, a 405 on a documented path, a 404 elsewhere", () => {
    expect(
      undocumented(document, [
        seen("PATCH", "/users/ada@example.com", 202, "application/json"),
        seen("PATCH", "/users/ada@example.com", 429),
        seen("GET", "/users/ada@example.com", 405),
        seen("GET", "/audit", 200, "application/x-ndjson"),
        seen("HEAD", "/healthz", 200, ""),
        seen("GET", "/nowhere", 404),
      ]),
    ).toEqual([]);
  });

  it("names the operation, status and type that are missing, and the request that showed it", () => {
    expect(
      undocumented(document, [
        seen("PATCH", "/users/ada@example.com", 418),
        seen("GET", "/audit", 200, "text/csv"),
        seen("GET", "/nowhere", 200, "text/html"),
      ]),
    ).toEqual([
      "(changeUser, 418, application/problem+json) from PATCH /users/ada@example.com",
      "(listAudit, 200, text/csv) from GET /audit",
      "(no operation: GET /nowhere is not a documented path, 200, text/html)",
    ]);
  });

  it("asks a 405 of every operation of the path", () => {
    const doc = structuredClone(document) as unknown as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    delete doc.paths["/users/{email}"].options.responses["405"];
    expect(undocumented(doc, [seen("PUT", "/users/ada@example.com", 405)])).toEqual([
      "(preflightChangeUser, 405, application/problem+json) from PUT /users/ada@example.com",
    ]);
  });
});
