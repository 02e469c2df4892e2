/** The version of @outflow/core; connector manifests declare a `coreVersion` range that must include it. */
export const CORE_VERSION = '1.0.0';
