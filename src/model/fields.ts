/**
 * The user fields this service can change: the one list every concern shares (the change
 * schema, token scopes, configuration, audit masking, the contract). Adding a field starts
 * here: docs/architecture.md lists every other place it touches.
 */

/** Every changeable field, in the canonical order (audit entries, errors, docs). */
export const FIELDS = ["first_name", "last_name", "phone_number"] as const;
export type Field = (typeof FIELDS)[number];

/** Values of some fields, as a validated change holds them (users/changes.ts's `Changes` is one). */
export type FieldValues = { readonly [F in Field]?: string };

/** The fields a change sets, in the canonical order. */
export const changedFields = (values: FieldValues): Field[] => FIELDS.filter((f) => values[f] !== undefined);
