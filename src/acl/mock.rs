//! A request context for the tests.

use std::net::SocketAddr;

use super::Context;

/// A request (and optionally response) built field by field.
pub(crate) struct MockContext {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub method: Vec<u8>,
    pub url: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub version: Vec<u8>,
    pub req_headers: Vec<(String, Vec<u8>)>,
    pub res_headers: Vec<(String, Vec<u8>)>,
    pub status: Option<u16>,
    pub ssl: bool,
    pub unique_id: Vec<u8>,
    /// Bytes held by content inspection: their length, the hello parsed
    /// from them and its reassembled message.
    pub payload: Option<(usize, Option<crate::base::client_hello::Hello>, Vec<u8>)>,
}

impl MockContext {
    /// `GET <url> HTTP/1.1` from 192.168.1.10:40000 to 10.0.0.1:80, no
    /// headers; the path and query are derived from `url` (origin-form or
    /// absolute-form).
    pub(crate) fn get(url: &str) -> MockContext {
        let mut ctx = MockContext {
            src: "192.168.1.10:40000".parse().unwrap(),
            dst: "10.0.0.1:80".parse().unwrap(),
            method: b"GET".to_vec(),
            url: Vec::new(),
            path: Vec::new(),
            query: None,
            version: b"1.1".to_vec(),
            req_headers: Vec::new(),
            res_headers: Vec::new(),
            status: None,
            ssl: false,
            unique_id: b"uid-1".to_vec(),
            payload: None,
        };
        ctx.set_url(url);
        ctx
    }

    pub(crate) fn set_url(&mut self, url: &str) {
        self.url = url.as_bytes().to_vec();
        let target = match url.find("://") {
            Some(scheme_end) => {
                let rest = &url[scheme_end + 3..];
                rest.find('/').map_or("/", |p| &rest[p..])
            }
            None => url,
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.as_bytes().to_vec())),
            None => (target, None),
        };
        self.path = path.as_bytes().to_vec();
        self.query = query;
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> MockContext {
        self.req_headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    pub(crate) fn res_header(mut self, name: &str, value: &str) -> MockContext {
        self.res_headers
            .push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    pub(crate) fn method(mut self, method: &str) -> MockContext {
        self.method = method.as_bytes().to_vec();
        self
    }

    pub(crate) fn src(mut self, addr: &str) -> MockContext {
        self.src = addr.parse().unwrap();
        self
    }

    pub(crate) fn dst(mut self, addr: &str) -> MockContext {
        self.dst = addr.parse().unwrap();
        self
    }

    pub(crate) fn version(mut self, version: &str) -> MockContext {
        self.version = version.as_bytes().to_vec();
        self
    }

    pub(crate) fn status(mut self, status: u16) -> MockContext {
        self.status = Some(status);
        self
    }

    pub(crate) fn ssl(mut self) -> MockContext {
        self.ssl = true;
        self
    }

    /// Content inspection read `raw` from the client.
    pub(crate) fn payload(mut self, raw: &[u8]) -> MockContext {
        use crate::base::client_hello::{HelloParser, Parsed};
        let mut msg = vec![0u8; 16 << 10];
        let hello = match HelloParser::new(16 << 10).feed(raw, &mut msg) {
            Parsed::Hello(h) => Some(h),
            _ => None,
        };
        self.payload = Some((raw.len(), hello, msg));
        self
    }
}

fn each_header(headers: &[(String, Vec<u8>)], name: &[u8], f: &mut dyn FnMut(&[u8])) {
    for (n, v) in headers {
        if n.as_bytes().eq_ignore_ascii_case(name) {
            f(v);
        }
    }
}

impl Context for MockContext {
    fn src(&self) -> SocketAddr {
        self.src
    }
    fn dst(&self) -> SocketAddr {
        self.dst
    }
    fn method(&self) -> &[u8] {
        &self.method
    }
    fn url(&self) -> &[u8] {
        &self.url
    }
    fn path(&self) -> &[u8] {
        &self.path
    }
    fn query(&self) -> Option<&[u8]> {
        self.query.as_deref()
    }
    fn version(&self) -> &[u8] {
        &self.version
    }
    fn req_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        each_header(&self.req_headers, name, f);
    }
    fn res_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        each_header(&self.res_headers, name, f);
    }
    fn status(&self) -> Option<u16> {
        self.status
    }
    fn ssl_fc(&self) -> bool {
        self.ssl
    }
    fn unique_id(&self) -> &[u8] {
        &self.unique_id
    }
    fn req_headers(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        for (n, v) in &self.req_headers {
            f(n.as_bytes(), v);
        }
    }
    fn payload(&self) -> Option<super::Payload<'_>> {
        let (len, hello, msg) = self.payload.as_ref()?;
        Some(super::Payload {
            len: *len,
            hello: hello.map(|h| (h, msg.as_slice())),
        })
    }
}

/// A context implementing only the required methods, to check the default
/// of [`Context::req_headers`].
pub(crate) struct MinimalContext(pub MockContext);

impl Context for MinimalContext {
    fn src(&self) -> SocketAddr {
        self.0.src
    }
    fn dst(&self) -> SocketAddr {
        self.0.dst
    }
    fn method(&self) -> &[u8] {
        &self.0.method
    }
    fn url(&self) -> &[u8] {
        &self.0.url
    }
    fn path(&self) -> &[u8] {
        &self.0.path
    }
    fn query(&self) -> Option<&[u8]> {
        self.0.query.as_deref()
    }
    fn version(&self) -> &[u8] {
        &self.0.version
    }
    fn req_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        each_header(&self.0.req_headers, name, f);
    }
    fn res_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8])) {
        each_header(&self.0.res_headers, name, f);
    }
    fn status(&self) -> Option<u16> {
        self.0.status
    }
    fn ssl_fc(&self) -> bool {
        self.0.ssl
    }
    fn unique_id(&self) -> &[u8] {
        &self.0.unique_id
    }
}
