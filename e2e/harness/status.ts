/**
 * Status as the e2e tests read it: the conditions signalbox writes, the entries of GET
 * /debug/status (and of `App.files.status()`), and a route's Ready condition among them.
 */

/** A condition as signalbox writes it (metav1.Condition; lastTransitionTime not read here). */
export interface Cond {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
}

/** The status of an object as the e2e tests read it: a Gateway's or a route's (per parent). */
export interface ObjectStatus {
  addresses?: { type: string; value: string }[];
  conditions?: Cond[];
  parents?: { conditions: Cond[] }[];
}

/** One object's entry in GET /debug/status. */
export interface Entry {
  kind: string;
  namespace?: string;
  name: string;
  generation: number;
  status: ObjectStatus | null;
}

/** The entries of GET /debug/status on a debug port. */
export async function debugStatus(debugPort: number): Promise<Entry[]> {
  return (await (await fetch(`http://127.0.0.1:${debugPort}/debug/status`)).json()) as Entry[];
}

/** The Ready condition of a route's first parent, from its status. */
export function readyOf(status: unknown): Cond | undefined {
  return (status as ObjectStatus | null | undefined)?.parents?.[0]?.conditions?.find(
    (c) => c.type === 'Ready',
  );
}

/** The Ready condition of the HTTPRoute `name` in a status listing (/debug/status, App.files.status()). */
export function routeReady(
  entries: readonly { kind: string; name: string; status: unknown }[],
  name: string,
): Cond | undefined {
  return readyOf(entries.find((x) => x.kind === 'HTTPRoute' && x.name === name)?.status);
}
