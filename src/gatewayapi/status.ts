/**
 * Conditions as the Gateway API spec defines them (metav1.Condition): type, status,
 * reason, message, observedGeneration, lastTransitionTime.
 *
 * lastTransitionTime is deterministic: it is carried over from the object's current
 * status when that condition's status did not change, and otherwise set to the `now`
 * the caller passes (tests pass a fixed instant).
 */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration: number;
  lastTransitionTime: string;
}

export interface ConditionInput {
  type: string;
  status: boolean | ConditionStatus;
  reason: string;
  message: string;
}

export class Conditions {
  private readonly list: Condition[] = [];
  constructor(
    private readonly generation: number,
    private readonly now: string,
    private readonly previous: Condition[] = [],
  ) {}

  /** Set (or replace) a condition of this type. */
  set(c: ConditionInput): this {
    const status: ConditionStatus = typeof c.status === 'boolean' ? (c.status ? 'True' : 'False') : c.status;
    const prev = this.previous.find((p) => p && p.type === c.type);
    const lastTransitionTime =
      prev && prev.status === status && typeof prev.lastTransitionTime === 'string'
        ? prev.lastTransitionTime
        : this.now;
    const cond: Condition = {
      type: c.type,
      status,
      reason: c.reason,
      message: c.message,
      observedGeneration: this.generation,
      lastTransitionTime,
    };
    const i = this.list.findIndex((x) => x.type === c.type);
    if (i >= 0) this.list[i] = cond;
    else this.list.push(cond);
    return this;
  }

  get(type: string): Condition | undefined {
    return this.list.find((c) => c.type === type);
  }

  toArray(): Condition[] {
    return [...this.list];
  }
}

/** Conditions of the previous status of an object (for lastTransitionTime), defensively read. */
export function previousConditions(
  status: unknown,
  pick?: (s: Record<string, unknown>) => unknown,
): Condition[] {
  if (!status || typeof status !== 'object') return [];
  const v = pick ? pick(status as Record<string, unknown>) : (status as Record<string, unknown>).conditions;
  return Array.isArray(v) ? (v.filter((c) => c && typeof c === 'object') as Condition[]) : [];
}

// ---- the spec's condition types and reasons (Gateway API v1.6) ----
export const Cond = {
  Accepted: 'Accepted',
  Programmed: 'Programmed',
  ResolvedRefs: 'ResolvedRefs',
  Conflicted: 'Conflicted',
  PartiallyInvalid: 'PartiallyInvalid',
  SupportedVersion: 'SupportedVersion',
} as const;

export const Reason = {
  // GatewayClass
  Accepted: 'Accepted',
  InvalidParameters: 'InvalidParameters',
  SupportedVersion: 'SupportedVersion',
  // Gateway
  Programmed: 'Programmed',
  Invalid: 'Invalid',
  ListenersNotValid: 'ListenersNotValid',
  UnsupportedAddress: 'UnsupportedAddress',
  AddressNotAssigned: 'AddressNotAssigned',
  AddressNotUsable: 'AddressNotUsable',
  // Listener
  PortUnavailable: 'PortUnavailable',
  UnsupportedProtocol: 'UnsupportedProtocol',
  HostnameConflict: 'HostnameConflict',
  ProtocolConflict: 'ProtocolConflict',
  NoConflicts: 'NoConflicts',
  ResolvedRefs: 'ResolvedRefs',
  InvalidCertificateRef: 'InvalidCertificateRef',
  InvalidRouteKinds: 'InvalidRouteKinds',
  RefNotPermitted: 'RefNotPermitted',
  // Route
  NotAllowedByListeners: 'NotAllowedByListeners',
  NoMatchingListenerHostname: 'NoMatchingListenerHostname',
  NoMatchingParent: 'NoMatchingParent',
  UnsupportedValue: 'UnsupportedValue',
  InvalidKind: 'InvalidKind',
  BackendNotFound: 'BackendNotFound',
} as const;
