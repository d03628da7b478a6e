export const SDK_VERSION = "0.4.0";

/** Event.source of every event this SDK publishes. */
export const SDK_SOURCE = `fulcrum-sdk/${SDK_VERSION} (typescript)`;
