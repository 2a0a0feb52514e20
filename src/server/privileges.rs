//! Dropping root after binding (`--user`, `--group`).

use nix::unistd::{Gid, Group, Uid, User, setgid, setgroups, setuid};
use std::io;

fn not_found(kind: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such {kind}: '{name}'"))
}

pub fn uid(name: &str) -> io::Result<Uid> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Uid::from_raw(n));
    }
    User::from_name(name)?
        .map(|u| u.uid)
        .ok_or_else(|| not_found("user", name))
}

pub fn gid(name: &str) -> io::Result<Gid> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    Group::from_name(name)?
        .map(|g| g.gid)
        .ok_or_else(|| not_found("group", name))
}

/// Switches to `user` (and its primary group, or `group`) when running as root.
pub fn drop_to(user: Option<&str>, group: Option<&str>) -> io::Result<()> {
    if user.is_none() && group.is_none() {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "--user/--group need the pool to be started as root",
        ));
    }
    let u = user
        .map(|n| {
            User::from_name(n)
                .ok()
                .flatten()
                .ok_or_else(|| not_found("user", n))
        })
        .transpose()?;
    let g = match group {
        Some(g) => gid(g)?,
        None => u.as_ref().map_or(Gid::current(), |u| u.gid),
    };
    setgroups(&[g]).map_err(io::Error::from)?;
    setgid(g).map_err(io::Error::from)?;
    if let Some(u) = u {
        setuid(u.uid).map_err(io::Error::from)?;
    }
    Ok(())
}
