//! Rules as the configuration holds them: `http-request`/`http-response`,
//! `tcp-request` and stick rules, parsed from their HAProxy spelling into
//! typed actions with their conditions. Evaluating them is the data path's
//! work (`proxy::http::rules`, `proxy::tcp::rules`, `proxy::upstream::persist`);
//! this layer imports only the ACL language, `model` and `base`.

pub(crate) mod http;
pub(crate) mod stick;
pub(crate) mod tcp;
