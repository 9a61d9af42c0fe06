/**
 * Schemas shared by the route plugins: the error body, paging, and small helpers. Each resource's
 * own schemas live beside its routes (routes/<resource>.ts).
 */
import { Type, type TSchema } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) }) },
  { $id: 'ErrorBody', description: 'Every refusal: a stable code (docs/errors.md) and what to do.' },
);

/** Nullable value: OpenAPI 3.1 spells it as a union with null. */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const IsoTime = Type.String({ format: 'date-time', description: 'ISO-8601 UTC' });

export const RoleSchema = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]);

/** Standard error answers documented on every route. */
export function errors<T extends Record<number | string, TSchema>>(ok: T): T & Record<string, TSchema> {
  return { ...ok, '4xx': Type.Ref('ErrorBody'), '5xx': Type.Ref('ErrorBody') };
}

export const MAX_PAGE = 1000;
export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE, default: 100 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
};
