//! Validation of `global.stats-socket`: where the runtime API listens and
//! at which level, in HAProxy's spelling
//! (`"/run/corral/admin.sock mode 600 level admin"`,
//! `"127.0.0.1:9999 level operator"`).

use super::*;

/// The options a socket line may carry after its address.
const OPTIONS: &[&str] = &["mode", "user", "group", "level"];

impl Validator<'_> {
    pub(super) fn stats_sockets(&mut self, v: &Value, path: &str) -> Vec<StatsSocket> {
        let mut out: Vec<StatsSocket> = Vec::new();
        for (text, p) in self.strings_only(v, path) {
            let Some(sock) = self.stats_socket(&text, &p) else {
                continue;
            };
            if out.iter().any(|o| o.addr == sock.addr) {
                self.c.at(
                    &p,
                    format!("`{}` is listed twice: each socket once", sock.addr),
                );
                continue;
            }
            out.push(sock);
        }
        out
    }

    fn stats_socket(&mut self, text: &str, path: &str) -> Option<StatsSocket> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let Some((&first, rest)) = words.split_first() else {
            self.c.at(
                path,
                "empty: expected a unix socket path or a loopback `ip:port`, then options (`mode 600`, `user NAME`, `group NAME`, `level user|operator|admin`)",
            );
            return None;
        };
        let addr = match api_addr(first, &self.base_dir) {
            Ok(a) => a,
            Err(msg) => {
                self.c.at(path, msg);
                return None;
            }
        };
        let mut sock = StatsSocket {
            text: text.to_string(),
            addr,
            mode: 0o600,
            uid: None,
            gid: None,
            level: ApiLevel::Operator,
        };
        let unix = matches!(sock.addr, ApiAddr::Unix(_));
        let mut ok = true;
        let mut i = 0;
        while i < rest.len() {
            let name = rest[i];
            if !OPTIONS.contains(&name) {
                self.c.at(
                    path,
                    format!(
                        "unknown option `{name}` in `{text}` (valid: {})",
                        OPTIONS.join(", ")
                    ),
                );
                return None;
            }
            let Some(&value) = rest.get(i + 1) else {
                self.c
                    .at(path, format!("`{name}` needs a value in `{text}`"));
                return None;
            };
            i += 2;
            if name != "level" && !unix {
                self.c.at(
                    path,
                    format!("`{name}` applies only to a unix socket, not to TCP `{first}`"),
                );
                ok = false;
                continue;
            }
            let parsed = match name {
                "mode" => u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .map(|m| sock.mode = m)
                    .ok_or_else(|| {
                        format!("mode `{value}` is not an octal permission such as 600 or 660")
                    }),
                "user" => lookup_user(value).map(|u| sock.uid = Some(u)),
                "group" => lookup_group(value).map(|g| sock.gid = Some(g)),
                _ => match value {
                    "user" => Ok(ApiLevel::User),
                    "operator" => Ok(ApiLevel::Operator),
                    "admin" => Ok(ApiLevel::Admin),
                    _ => Err(format!(
                        "level `{value}` is not one of user, operator, admin"
                    )),
                }
                .map(|l| sock.level = l),
            };
            if let Err(msg) = parsed {
                self.c.at(path, msg);
                ok = false;
            }
        }
        ok.then_some(sock)
    }
}

/// The address of a socket line: a unix path (`/run/x.sock`,
/// `unix@/run/x.sock`, or a relative path with a `/`, read from the
/// configuration's directory) or a loopback `ip:port` (`ipv4@` and `ipv6@`
/// prefixes accepted).
fn api_addr(word: &str, base: &Path) -> Result<ApiAddr, String> {
    let unix = word
        .strip_prefix("unix@")
        .or_else(|| word.contains('/').then_some(word));
    if let Some(p) = unix {
        if p.is_empty() {
            return Err(format!("`{word}` names no socket path"));
        }
        let path = base.join(p);
        // sun_path holds 108 bytes with the final NUL.
        if path.as_os_str().len() > 107 {
            return Err(format!(
                "the unix socket path `{}` is longer than 107 bytes, the system's limit",
                path.display()
            ));
        }
        return Ok(ApiAddr::Unix(path));
    }
    let text = word
        .strip_prefix("ipv4@")
        .or_else(|| word.strip_prefix("ipv6@"))
        .unwrap_or(word);
    let addr = parse_bind(text)
        .map_err(|e| format!("{e}; or a unix socket path such as `/run/corral/admin.sock`"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "`{word}`: a TCP runtime API socket must be on loopback (127.0.0.1 or [::1]): the API has no authentication, so it is never offered to the network; use a unix socket, or loopback behind ssh"
        ));
    }
    Ok(ApiAddr::Tcp(addr))
}

/// A user id from a name or a number.
fn lookup_user(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let c = std::ffi::CString::new(name).map_err(|_| format!("user `{name}` is not valid"))?;
    // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids).
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the result points into
    // `pwd`/`buf`, which outlive its use.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!(
            "no user `{name}` on this system (write a user name from /etc/passwd or a number)"
        ));
    }
    Ok(pwd.pw_uid)
}

/// A group id from a name or a number.
fn lookup_group(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let c = std::ffi::CString::new(name).map_err(|_| format!("group `{name}` is not valid"))?;
    // SAFETY: all-zero is a valid `group` (null pointers, zero ids).
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `lookup_user`.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(format!(
            "no group `{name}` on this system (write a group name from /etc/group or a number)"
        ));
    }
    Ok(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses() {
        let base = Path::new("/etc/corral");
        assert_eq!(
            api_addr("/run/a.sock", base),
            Ok(ApiAddr::Unix("/run/a.sock".into()))
        );
        assert_eq!(
            api_addr("unix@run/a.sock", base),
            Ok(ApiAddr::Unix("/etc/corral/run/a.sock".into()))
        );
        assert_eq!(
            api_addr("ipv4@127.0.0.1:9999", base),
            Ok(ApiAddr::Tcp("127.0.0.1:9999".parse().unwrap()))
        );
        assert_eq!(
            api_addr("[::1]:0", base),
            Ok(ApiAddr::Tcp("[::1]:0".parse().unwrap()))
        );
        assert!(
            api_addr("0.0.0.0:9999", base)
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            api_addr("10.1.2.3:9999", base)
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            api_addr("nonsense", base)
                .unwrap_err()
                .contains("unix socket path")
        );
        assert_eq!(lookup_user("root"), Ok(0));
        assert_eq!(lookup_group("1234"), Ok(1234));
        assert!(lookup_user("no-such-user-here").is_err());
    }
}
