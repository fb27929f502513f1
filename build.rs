//! Link-time workaround for glommio 0.9: its io_uring rings are created
//! without IORING_SETUP_COOP_TASKRUN, so every completion interrupts the
//! worker with an IPI. glommio's bundled liburing creates each ring through
//! `__sys_io_uring_setup` (setup.c calls it, syscall.c defines it); the
//! linker's `--wrap` routes that call through `engine::ring_setup`, which
//! adds the flag. See src/engine/ring_setup.rs.

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--wrap=__sys_io_uring_setup");
    println!("cargo:rerun-if-changed=build.rs");
}
