//! Checks that evaluation and rendering do not allocate: a counting global
//! allocator (test builds only) with a per-thread counter, so tests running
//! in parallel do not disturb each other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::mock::MockContext;
use super::{AclSet, Condition, LogFormat};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn acls() -> AclSet {
    let mut set = AclSet::new();
    set.define("site1", "hdr(host) -i site1.example.com")
        .unwrap();
    set.define("api", r"path_reg -i ^/api/v[0-9]+/").unwrap();
    set.define("lan", "src 10.0.0.0/8 192.168.0.0/16").unwrap();
    set.define("big", "hdr_val(content-length) gt 1000")
        .unwrap();
    set.define("ua", "req.hdr(user-agent),lower -m sub curl")
        .unwrap();
    set.define(
        "many",
        "base -i a b c d e f g h i j site1.example.com/api/v1/users",
    )
    .unwrap();
    set
}

fn ctx() -> MockContext {
    MockContext::get("/api/v1/users?id=7")
        .src("192.168.1.9:4000")
        .header("Host", "SITE1.example.com:8080")
        .header("User-Agent", "Mozilla/5.0, CURL/8.0")
        .header("Content-Length", "12")
        .header("Accept", "a, b, c")
}

#[test]
fn condition_eval_does_not_allocate() {
    let set = acls();
    let conditions: Vec<Condition> = [
        "if site1 api lan",
        "if !big ua || { hdr(accept) c }",
        "if many { url_param(id) -m int 7 } { path_dir v1 } { hdr_dom(host) example.com }",
        "unless { method POST } || LOCALHOST !METH_GET",
        "if { hdr_cnt(accept) 3 } { query -m found } TRUE",
    ]
    .iter()
    .map(|t| Condition::parse(t, &set).unwrap())
    .collect();
    let c = ctx();
    // Warm up: the regex engine sets up a per-thread cache on first use.
    for cond in &conditions {
        assert!(cond.eval(&c));
    }
    let n = allocations(|| {
        for cond in &conditions {
            assert!(cond.eval(&c));
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn render_does_not_allocate() {
    let lf = LogFormat::parse(
        "%ci:%cp %fi:%fp %ID %pid %Ts %{+Q}[hdr(host),lower] %[path] %[url_param(id)] %[hdr(accept)] %[base] %[src] %[hdr_cnt(accept)]",
    )
    .unwrap();
    let c = ctx();
    let mut out = Vec::with_capacity(1024);
    lf.render(&c, &mut out);
    out.clear();
    let n = allocations(|| lf.render(&c, &mut out));
    assert_eq!(n, 0);
    assert!(
        out.starts_with(b"192.168.1.9:4000 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
}
