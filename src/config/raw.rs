//! The configuration file exactly as written: serde types that mirror the
//! YAML and deny unknown keys. Values whose shape varies (a duration may be
//! `5s` or `5000`, `check` may be `true` or a map) stay as YAML values here
//! and are interpreted by `validate`, which reports every problem at once.

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;
use std::fmt;
use std::marker::PhantomData;

/// A YAML mapping whose order matters (server order decides `first` and
/// backups), with duplicate keys rejected.
#[derive(Debug, Clone)]
pub(super) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to sections")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format_args!(
                            "`{key}` is defined twice: names must be unique"
                        )));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub global: RawGlobal,
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub frontends: OrderedMap<RawFrontend>,
    #[serde(default)]
    pub backends: OrderedMap<RawBackend>,
    #[serde(default)]
    pub peers: OrderedMap<RawPeers>,
}

/// `peers.NAME:` corral (and HAProxy) nodes that share stick tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPeers {
    pub local: Option<Value>,
    #[serde(default)]
    pub peer: OrderedMap<Value>,
}

/// `stick-table:` of a frontend or backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStickTable {
    #[serde(rename = "type")]
    pub key_type: Option<Value>,
    pub len: Option<Value>,
    pub size: Option<Value>,
    pub expire: Option<Value>,
    pub peers: Option<Value>,
    pub store: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobal {
    pub workers: Option<Value>,
    pub maxconn: Option<Value>,
    #[serde(rename = "io-memory")]
    pub io_memory: Option<Value>,
    #[serde(rename = "hard-stop-after")]
    pub hard_stop_after: Option<Value>,
    #[serde(rename = "tune.bufsize")]
    pub bufsize: Option<Value>,
    pub log: Option<Value>,
    pub steer: Option<Value>,
    #[serde(rename = "ssl-provider")]
    pub ssl_provider: Option<Value>,
    #[serde(rename = "stats-socket")]
    pub stats_socket: Option<Value>,
    #[serde(rename = "control-socket")]
    pub control_socket: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub mode: Option<Value>,
    pub retries: Option<Value>,
    pub maxconn: Option<Value>,
    pub balance: Option<Value>,
    pub timeout: Option<RawTimeouts>,
    pub option: Option<Value>,
    pub errorfiles: Option<Value>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub connect: Option<Value>,
    pub client: Option<Value>,
    pub server: Option<Value>,
    pub queue: Option<Value>,
    pub check: Option<Value>,
    #[serde(rename = "http-request")]
    pub http_request: Option<Value>,
    #[serde(rename = "http-keep-alive")]
    pub http_keep_alive: Option<Value>,
    pub tunnel: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFrontend {
    pub bind: Option<Value>,
    pub mode: Option<Value>,
    pub maxconn: Option<Value>,
    pub default_backend: Option<Value>,
    pub timeout: Option<RawTimeouts>,
    pub option: Option<Value>,
    pub log: Option<Value>,
    pub acl: Option<Value>,
    #[serde(rename = "http-request")]
    pub http_request: Option<Value>,
    #[serde(rename = "http-response")]
    pub http_response: Option<Value>,
    pub use_backend: Option<Value>,
    pub errorfiles: Option<Value>,
    pub capture: Option<Value>,
    #[serde(rename = "unique-id-format")]
    pub unique_id_format: Option<Value>,
    #[serde(rename = "unique-id-header")]
    pub unique_id_header: Option<Value>,
    #[serde(rename = "stick-table")]
    pub stick_table: Option<RawStickTable>,
    #[serde(rename = "tcp-request")]
    pub tcp_request: Option<Value>,
    pub tls: Option<Value>,
    pub stats: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    pub mode: Option<Value>,
    pub balance: Option<Value>,
    pub retries: Option<Value>,
    pub timeout: Option<RawTimeouts>,
    pub option: Option<Value>,
    pub acl: Option<Value>,
    #[serde(rename = "http-request")]
    pub http_request: Option<Value>,
    #[serde(rename = "http-response")]
    pub http_response: Option<Value>,
    pub errorfiles: Option<Value>,
    #[serde(rename = "stick-table")]
    pub stick_table: Option<RawStickTable>,
    pub stick: Option<Value>,
    #[serde(default)]
    pub servers: OrderedMap<RawServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub address: Option<Value>,
    pub weight: Option<Value>,
    pub maxconn: Option<Value>,
    pub backup: Option<Value>,
    pub check: Option<Value>,
    #[serde(rename = "pool-max-conn")]
    pub pool_max_conn: Option<Value>,
    #[serde(rename = "pool-purge-delay")]
    pub pool_purge_delay: Option<Value>,
    pub tls: Option<Value>,
}
