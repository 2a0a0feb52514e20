//! Every command ends quietly when its reader goes away (`mp4-fcgi info F |
//! head -1`), as cat and head do: no message, killed by SIGPIPE (status 141
//! in the shell), never a panic (exit 101).

mod common;

use common::{BIN, media};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// The write end of a pipe whose read end is already closed.
fn closed_pipe() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 returns.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just opened both; each is owned once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    write
}

/// `mp4-fcgi ARGS` with standard output a pipe nobody reads: how it ended
/// and what it said on stderr.
fn into_closed_pipe(args: &[&str]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .current_dir(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed_pipe()))
        .output()
        .expect("mp4-fcgi runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    if o.status.signal() == Some(libc::SIGPIPE) && stderr.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {} (want death by SIGPIPE), stderr {stderr:?}",
            o.status
        ))
    }
}

#[test]
fn every_command_ends_quietly_on_a_closed_pipe() {
    let a = media("a.mp4");
    let a = a.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let failures: Vec<String> = [
        vec!["info", a],
        vec!["info", "--json", a],
        vec!["cut", a, "-"],
        vec!["cut", a, "-", "--start", "5"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["man"],
        vec!["man", "cut"],
        vec!["--help"],
        vec!["--version"],
        vec!["help", "cut"],
        vec!["--check", "--root", root, "--workers", "1"],
    ]
    .iter()
    .filter_map(|args| into_closed_pipe(args).err())
    .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// What a person types, through a shell: `| head -1` prints the first line,
/// and nothing is said on stderr.
#[test]
fn info_piped_into_head_prints_one_line_and_nothing_else() {
    let a = media("a.mp4");
    let o = Command::new("bash")
        .args([
            "-c",
            "\"$0\" info \"$1\" | head -1; echo \"${PIPESTATUS[0]}\" >&2",
        ])
        .arg(BIN)
        .arg(&a)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    // 0 when the whole text fit in the pipe before head left, else 141.
    assert!(
        ["0", "141"].contains(&stderr.trim()),
        "stderr {stderr:?} (want only the status, 0 or 141)"
    );
}
