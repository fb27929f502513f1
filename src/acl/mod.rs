//! TEMPORARY STUB of the ACL contract so the HTTP engine compiles while the
//! real module is written on branch `acl`. Replaced at merge.
#![allow(dead_code, unused_variables)]
use std::net::SocketAddr;

pub trait Context {
    fn src(&self) -> SocketAddr;
    fn dst(&self) -> SocketAddr;
    fn method(&self) -> &[u8];
    fn url(&self) -> &[u8];
    fn path(&self) -> &[u8];
    fn query(&self) -> Option<&[u8]>;
    fn version(&self) -> &[u8];
    fn req_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8]));
    fn res_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8]));
    fn status(&self) -> Option<u16>;
    fn ssl_fc(&self) -> bool;
    fn unique_id(&self) -> &[u8];
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub token: String,
    pub message: String,
}
#[derive(Debug, Default, Clone)]
pub struct AclSet {
    names: Vec<String>,
}
impl AclSet {
    pub fn new() -> AclSet {
        AclSet::default()
    }
    pub fn define(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        self.names.push(name.into());
        Ok(())
    }
    pub fn contains(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}
#[derive(Debug, Clone)]
pub struct Condition {
    text: String,
}
impl Condition {
    pub fn parse(text: &str, acls: &AclSet) -> Result<Condition, ParseError> {
        Ok(Condition { text: text.into() })
    }
    pub fn eval(&self, ctx: &dyn Context) -> bool {
        false
    }
}
pub fn split_condition(line: &str) -> (&str, Option<(&str, usize)>) {
    match line.find(" if ").or_else(|| line.find(" unless ")) {
        Some(i) => (line[..i].trim(), Some((&line[i + 1..], i + 1))),
        None => (line.trim(), None),
    }
}
pub fn split_words(text: &str) -> Result<Vec<(String, usize)>, ParseError> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c == ' ' {
            if let Some(s) = start.take() {
                out.push((text[s..i].to_string(), s));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((text[s..].to_string(), s));
    }
    Ok(out)
}
#[derive(Debug, Clone, PartialEq)]
pub enum Sample<'a> {
    Str(std::borrow::Cow<'a, [u8]>),
    Int(i64),
    Ip(std::net::IpAddr),
    Bool(bool),
}
#[derive(Debug, Clone)]
pub struct Fetch {
    name: String,
}
impl Fetch {
    pub fn parse(text: &str) -> Result<Fetch, ParseError> {
        Ok(Fetch { name: text.into() })
    }
    pub fn eval<'c>(&self, ctx: &'c dyn Context) -> Option<Sample<'c>> {
        None
    }
    pub fn name(&self) -> &str {
        &self.name
    }
}
#[derive(Debug, Clone)]
pub struct LogFormat {
    text: String,
}
impl LogFormat {
    pub fn parse(text: &str) -> Result<LogFormat, ParseError> {
        Ok(LogFormat { text: text.into() })
    }
    pub fn render(&self, ctx: &dyn Context, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text.as_bytes())
    }
    pub fn is_literal(&self) -> bool {
        true
    }
}
