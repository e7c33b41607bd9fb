/** --metrics-address cannot be listened on; a module of its own so that catching it does not load the metrics. */
export class MetricsAddressError extends Error {}
