//! The control plane: the runtime API (`corral ctl`, HAProxy's stats-socket
//! commands) and the statistics views (HTML page, CSV, Prometheus), which
//! read every worker's numbers through the mesh and steer servers. The
//! HTTP data path serves the stats page by calling into `stats`; nothing
//! here calls the data path.

pub(crate) mod runtime_api;
pub(crate) mod stats;
