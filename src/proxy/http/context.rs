//! What ACL conditions and log-format values can see of a request (and,
//! in `http-response` rules, of its response).

use crate::acl;
use crate::proxy::http::head::Head;
use std::net::SocketAddr;

/// A request being processed, as the ACL fetches see it.
pub(crate) struct ReqCtx<'a> {
    pub req: &'a Head,
    /// The response, in `http-response` rules.
    pub res: Option<&'a Head>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// The client connection's TLS session, when it arrived over TLS.
    pub tls: Option<&'a rustls::ServerConnection>,
    pub unique_id: &'a [u8],
    /// Stick tables and the connection's tracked counters.
    pub stick: Option<crate::stick::Env<'a>>,
}

impl acl::Context for ReqCtx<'_> {
    fn src(&self) -> SocketAddr {
        self.src
    }
    fn dst(&self) -> SocketAddr {
        self.dst
    }
    fn method(&self) -> &[u8] {
        self.req.method()
    }
    fn url(&self) -> &[u8] {
        self.req.target()
    }
    fn path(&self) -> &[u8] {
        self.req.path()
    }
    fn query(&self) -> Option<&[u8]> {
        self.req.query()
    }
    fn version(&self) -> &[u8] {
        if self.req.minor == 0 { b"1.0" } else { b"1.1" }
    }
    fn req_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        for v in self.req.values(name) {
            f(v);
        }
    }
    fn req_headers(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (n, v) in self.req.headers() {
            f(n, v);
        }
    }
    fn res_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        if let Some(res) = self.res {
            for v in res.values(name) {
                f(v);
            }
        }
    }
    fn status(&self) -> Option<u16> {
        self.res.map(|r| r.status)
    }
    fn tls(&self) -> Option<&rustls::ServerConnection> {
        self.tls
    }
    fn unique_id(&self) -> &[u8] {
        self.unique_id
    }
    fn stick_counter(&self, q: &crate::model::table::Query) -> Option<u64> {
        self.stick.as_ref()?.read(q, self.src.ip())
    }
}
