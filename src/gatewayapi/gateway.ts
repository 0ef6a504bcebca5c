/** GatewayClass acceptance and Gateway status. */
import { buildListeners } from './listener.js';
import type { ListenerState } from './listener.js';
import type { ObjectSet } from './objects.js';
import { sortedValues } from './objects.js';
import { Cond, Conditions, Reason, previousConditions } from './status.js';
import type { Condition } from './status.js';
import type { Gateway, GatewayClass } from './types.js';
import { key } from './types.js';
import { show } from './validate.js';

export interface ClassState {
  cls: GatewayClass;
  accepted: boolean;
  conds: Conditions;
}

export function gen(o: { metadata: { generation?: number } }): number {
  const g = o.metadata.generation;
  return typeof g === 'number' && Number.isInteger(g) && g >= 0 ? g : 0;
}

export function buildClasses(objs: ObjectSet, controllerName: string, now: string): Map<string, ClassState> {
  const out = new Map<string, ClassState>();
  for (const cls of sortedValues(objs.gatewayClasses)) {
    if (cls.spec?.controllerName !== controllerName) continue;
    const conds = new Conditions(gen(cls), now, previousConditions(cls.status));
    const params = cls.spec.parametersRef;
    const accepted = !params;
    conds.set(
      accepted
        ? { type: Cond.Accepted, status: true, reason: Reason.Accepted, message: 'GatewayClass is accepted' }
        : {
            type: Cond.Accepted,
            status: false,
            reason: Reason.InvalidParameters,
            message: `parametersRef ${show(params.kind)} ${show(params.name)} is not supported`,
          },
    );
    conds.set({
      type: Cond.SupportedVersion,
      status: true,
      reason: Reason.SupportedVersion,
      message: 'Gateway API CRDs of a supported version (v1.6)',
    });
    out.set(cls.metadata.name!, { cls, accepted, conds });
  }
  return out;
}

/**
 * The address a Gateway's own data plane binds, when signalbox runs one Envoy per Gateway
 * (`serve --envoy local`, src/launcher/), or why it has none: UnsupportedAddress makes the
 * Gateway Accepted=False; AddressNotUsable and AddressNotAssigned make it Programmed=False
 * (and give it no Envoy configuration).
 */
export type GatewayAddress =
  | { address: string }
  | { reason: 'UnsupportedAddress' | 'AddressNotUsable' | 'AddressNotAssigned'; message: string };

export interface GatewayState {
  gw: Gateway;
  key: string;
  accepted: boolean;
  listeners: ListenerState[];
  conds: Conditions;
  error?: { reason: string; message: string };
  /** per-Gateway addresses: the one this Gateway's listeners bind (undefined: it has none) */
  address?: string;
}

/**
 * `addresses` (per-Gateway addresses, see GatewayAddress): spec.addresses are requests the
 * caller judged; without it spec.addresses are not supported.
 */
export function buildGateways(
  objs: ObjectSet,
  classes: Map<string, ClassState>,
  now: string,
  addresses?: ReadonlyMap<string, GatewayAddress>,
): Map<string, GatewayState> {
  const out = new Map<string, GatewayState>();
  for (const gw of sortedValues(objs.gateways)) {
    const cls =
      typeof gw.spec.gatewayClassName === 'string' ? classes.get(gw.spec.gatewayClassName) : undefined;
    if (!cls) continue; // not ours
    const g = gen(gw);
    const st = gw.status as { listeners?: { name?: string; conditions?: Condition[] }[] } | undefined;
    const prevListeners = new Map<string, Condition[]>();
    for (const l of Array.isArray(st?.listeners) ? st.listeners : []) {
      if (l && typeof l.name === 'string') prevListeners.set(l.name, previousConditions(l));
    }
    const conds = new Conditions(g, now, previousConditions(gw.status));
    const state: GatewayState = {
      gw,
      key: key(gw.metadata.namespace, gw.metadata.name),
      accepted: false,
      listeners: [],
      conds,
    };
    out.set(state.key, state);
    const listeners = Array.isArray(gw.spec.listeners) ? gw.spec.listeners : [];
    const names = listeners.map((l) => l?.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (!cls.accepted)
      state.error = {
        reason: Reason.Invalid,
        message: `GatewayClass ${cls.cls.metadata.name} is not accepted`,
      };
    else if (listeners.length === 0)
      state.error = { reason: Reason.ListenersNotValid, message: 'Gateway has no listeners' };
    else if (dup !== undefined)
      state.error = {
        reason: Reason.Invalid,
        message: `listener name ${show(dup)} is used more than once`,
      };
    else if (!addresses && Array.isArray(gw.spec.addresses) && gw.spec.addresses.length > 0) {
      state.error = { reason: Reason.UnsupportedAddress, message: 'spec.addresses is not supported' };
    }
    const assigned: GatewayAddress | undefined = addresses
      ? (addresses.get(state.key) ?? { reason: 'AddressNotAssigned', message: 'no address assigned yet' })
      : undefined;
    if (!state.error && assigned && 'reason' in assigned && assigned.reason === 'UnsupportedAddress')
      state.error = { reason: Reason.UnsupportedAddress, message: assigned.message };
    if (!state.error) {
      state.listeners = buildListeners(objs, gw, g, now, prevListeners);
      const ok = state.listeners.filter((l) => l.accepted);
      const bad = state.listeners.filter((l) => !l.accepted);
      if (ok.length === 0)
        state.error = {
          reason: Reason.ListenersNotValid,
          message: `no valid listener: ${bad.map((l) => l.name).join(', ')}`,
        };
      else {
        state.accepted = true;
        conds.set(
          bad.length
            ? {
                type: Cond.Accepted,
                status: true,
                reason: Reason.ListenersNotValid,
                message: `listeners not valid: ${bad.map((l) => l.name).join(', ')}; accepted: ${ok.map((l) => l.name).join(', ')}`,
              }
            : { type: Cond.Accepted, status: true, reason: Reason.Accepted, message: 'Gateway is accepted' },
        );
        const programmed = state.listeners.some((l) => l.ready);
        const address = assigned && 'address' in assigned ? assigned.address : undefined;
        conds.set(
          assigned && 'reason' in assigned
            ? { type: Cond.Programmed, status: false, reason: assigned.reason, message: assigned.message }
            : programmed
              ? {
                  type: Cond.Programmed,
                  status: true,
                  reason: Reason.Programmed,
                  message: address
                    ? `Gateway is programmed: its listeners bind ${address}`
                    : 'Gateway is programmed',
                }
              : {
                  type: Cond.Programmed,
                  status: false,
                  reason: Reason.Invalid,
                  message: 'no listener can be programmed',
                },
        );
        state.address = address;
      }
    }
    if (state.error) {
      conds.set({ type: Cond.Accepted, status: false, ...state.error });
      conds.set({
        type: Cond.Programmed,
        status: false,
        reason: Reason.Invalid,
        message: state.error.message,
      });
    }
  }
  return out;
}
