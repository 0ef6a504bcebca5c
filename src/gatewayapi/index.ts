/**
 * Gateway API → IR and status. Pure: no Envoy types, no I/O, no clock.
 *
 *   const { ir, statuses, rejected } = translate(objects, { now, controllerName, cache });
 *
 * `objects` are Kubernetes objects as the API server serves them (GatewayClass, Gateway,
 * HTTPRoute, GRPCRoute, ReferenceGrant, Service, EndpointSlice, Secret, Namespace). They
 * are treated as immutable: the caches key on object identity and resourceVersion, as an
 * informer's store hands them out. Results are shared with the cache: do not mutate them.
 * src/xds/translate turns the IR into Envoy resources and snapshots.
 */
export { RouteCache, translate } from './translator.js';
export type { ObjectStatus, TranslateOptions, TranslateResult } from './translator.js';
export type * from './ir.js';
export type { Condition } from './status.js';
export type { GatewayAddress } from './gateway.js';
export { DEFAULT_CONTROLLER } from './types.js';
