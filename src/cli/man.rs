//! The man pages: mp4-fcgi(1), the flags (from clap) and what flags cannot
//! say (query parameters, HLS/DASH names, signals, files, exit status,
//! examples); and mp4-fcgi-SUBCOMMAND(1), one per subcommand, which the
//! main page names and `mp4-fcgi man SUBCOMMAND` prints.

use clap_mangen::Man;
use roff::{Inline, Roff, bold, italic, roman};
use std::io;

/// The subcommands with a page of their own (clap's `help` has none: it
/// prints the help, which these pages hold).
pub const SUBCOMMANDS: [&str; 4] = ["cut", "info", "completions", "man"];

/// The page of `sub`, or the main page.
pub fn page(mut cmd: clap::Command, sub: Option<&str>) -> io::Result<String> {
    // Built, the subcommands know their names (mp4-fcgi-cut, `mp4-fcgi cut`).
    cmd.build();
    match sub {
        None => main_page(cmd),
        Some(name) => {
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no subcommand '{name}'"))
            })?;
            sub_page(sub.version(env!("CARGO_PKG_VERSION")), name)
        }
    }
}

/// One part of a page as clap_mangen renders it, without the preamble it
/// puts before every part (the page has one, at its top).
fn part(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    let text = String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let preamble = Roff::new().render();
    Ok(text
        .strip_prefix(preamble.as_str())
        .unwrap_or(&text)
        .to_string())
}

/// Our sections, without the preamble.
fn ours(r: &Roff) -> String {
    let text = r.render();
    let preamble = Roff::new().render();
    text.strip_prefix(preamble.as_str())
        .unwrap_or(&text)
        .to_string()
}

fn main_page(cmd: clap::Command) -> io::Result<String> {
    let man = Man::new(cmd.clone());
    let mut page = Roff::new().render();
    page += &part(|w| man.render_title(w))?;
    page += &part(|w| man.render_name_section(w))?;
    page += &part(|w| man.render_synopsis_section(w))?;
    page += &part(|w| man.render_description_section(w))?;
    page += &part(|w| man.render_options_section(w))?;
    page += &ours(&main_sections(&cmd));
    page += &part(|w| man.render_version_section(w))?;
    Ok(page)
}

fn sub_page(sub: clap::Command, name: &str) -> io::Result<String> {
    let man = Man::new(sub).source(format!("mp4-fcgi {}", env!("CARGO_PKG_VERSION")));
    let mut page = Roff::new().render();
    page += &part(|w| man.render_title(w))?;
    page += &part(|w| man.render_name_section(w))?;
    page += &part(|w| man.render_synopsis_section(w))?;
    page += &part(|w| man.render_description_section(w))?;
    page += &part(|w| man.render_options_section(w))?;
    page += &ours(&sub_sections(name));
    page += &part(|w| man.render_version_section(w))?;
    Ok(page)
}

/// A section heading.
fn sh(r: &mut Roff, title: &str) {
    r.control("SH", [title]);
}

/// A paragraph.
fn pp(r: &mut Roff, text: impl Into<Vec<Inline>>) {
    r.control("PP", []);
    r.text(text);
}

/// A tagged paragraph: `tag`, then `text` indented under it.
fn tp(r: &mut Roff, tag: impl Into<Vec<Inline>>, text: impl Into<Vec<Inline>>) {
    r.control("TP", []);
    r.text(tag);
    r.text(text);
}

/// Lines shown as they are, indented (commands, URLs).
fn verbatim(r: &mut Roff, lines: &[&str]) {
    r.control("PP", []);
    r.control("RS", ["4"]);
    r.control("nf", []);
    for l in lines {
        r.text([roman(*l)]);
    }
    r.control("fi", []);
    r.control("RE", []);
}

/// Each subcommand, with the command that prints its page.
fn subcommands(r: &mut Roff, cmd: &clap::Command) {
    sh(r, "SUBCOMMANDS");
    for name in SUBCOMMANDS {
        let about = cmd
            .find_subcommand(name)
            .and_then(|s| s.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        tp(
            r,
            [bold(format!("mp4-fcgi {name}"))],
            [
                roman(format!(
                    "{about}. Its page: mp4-fcgi-{name}(1), printed by "
                )),
                bold(format!("mp4-fcgi man {name}")),
                roman("."),
            ],
        );
    }
    pp(
        r,
        [
            bold("mp4-fcgi help"),
            roman(" ["),
            italic("SUBCOMMAND"),
            roman("] prints the help of the pool or of a subcommand."),
        ],
    );
}

fn main_sections(cmd: &clap::Command) -> Roff {
    let mut r = Roff::new();
    subcommands(&mut r, cmd);

    sh(&mut r, "QUERY PARAMETERS");
    pp(
        &mut r,
        [roman(
            "A film's URL (its SCRIPT_FILENAME, or DOCUMENT_ROOT and SCRIPT_NAME) is the whole \
             film, with the moov moved to the front if needed. Its QUERY_STRING makes it a \
             clip. Seconds are digits with an optional decimal part.",
        )],
    );
    tp(
        &mut r,
        [bold("start="), italic("SECONDS")],
        [roman(
            "Where the clip starts. The output begins with the key frame at or before it; \
             an edit list hides the frames between the key frame and start.",
        )],
    );
    tp(
        &mut r,
        [bold("end="), italic("SECONDS")],
        [roman("Where the clip ends.")],
    );
    tp(
        &mut r,
        [bold("client=flash")],
        [roman(
            "(any case) Only the first video and the first audio track, no edit lists, a \
             plain moov: the output is shown from the key frame, not from start.",
        )],
    );
    pp(
        &mut r,
        [roman(
            "A malformed number (abc, -5, 1e3, inf, empty), a start past the end, an end not \
             after start or an unknown client is answered 400 with a one-line reason. Other \
             parameters (tokens, cache busters) are ignored.",
        )],
    );

    sh(&mut r, "HLS AND DASH");
    pp(
        &mut r,
        [roman(
            "Each film is also an HLS and a DASH presentation (CMAF), packaged on the fly \
             under its own URL; start and end make a clip of it, and every URL inside its \
             manifests carries them. TRACK is a track id, N a segment number from 1:",
        )],
    );
    for (name, what) in [
        ("FILM/master.m3u8", "The HLS master playlist."),
        ("FILM/index-TRACK.m3u8", "One track's HLS media playlist."),
        ("FILM/manifest.mpd", "The DASH manifest."),
        ("FILM/init-TRACK.mp4", "One track's initialization segment."),
        ("FILM/seg-N-TRACK.m4s", "One track's media segment N."),
    ] {
        tp(&mut r, [bold(name)], [roman(what)]);
    }
    pp(
        &mut r,
        [roman(
            "A URL set names several encodes of one film as one presentation: \
             /films/a_,360,720,.mp4.urlset/master.m3u8 is a_360.mp4 and a_720.mp4, whose \
             tracks are named fFILM-TRACK (index-f2-1.m3u8). Segments are cut at the key \
             frame nearest each multiple of --segment-duration; --url-sets says where sets \
             are served.",
        )],
    );
    pp(
        &mut r,
        [roman(
            "Audio and subtitle tracks are named by their own name (udta name, ffmpeg's \
             title), else by their language's name; their language is a BCP 47 tag from elng \
             or mdhd. One audio track is the default (HLS DEFAULT=YES, DASH Role main): the \
             first in --default-language, else the first enabled one (tkhd), else the first.",
        )],
    );

    pp(
        &mut r,
        [roman(
            "Subtitles: a film's tx3g, wvtt and stpp (TTML) tracks, and SRT or WebVTT files \
             beside it (FILM.srt, FILM.LANG.srt, FILM.LANG.vtt), are served as WebVTT: \
             FILM/subs-TRACK.m3u8, FILM/subs-N-TRACK.vtt (HLS), FILM/subs-TRACK.vtt (DASH).",
        )],
    );

    sh(&mut r, "KEY FILE");
    pp(
        &mut r,
        [roman(
            "With --keys, a film the key file names is encrypted in HLS and DASH and refused \
             progressively (403). One line per film pattern (a glob over its path under \
             --root, or its key in a store), the first match winning:",
        )],
    );
    tp(
        &mut r,
        [bold("PATTERN SCHEME KEY-ID KEY [OPTIONS]")],
        [roman(
            "SCHEME is cenc (AES-CTR), cbcs (AES-CBC, HLS SAMPLE-AES) or aes-128 (HLS \
             METHOD=AES-128, whole segments); KEY-ID and KEY are 32 hex digits.",
        )],
    );
    tp(
        &mut r,
        [bold("PATTERN SCHEME derive SECRET [OPTIONS]")],
        [roman(
            "Each film its own key id and key: HMAC-SHA256 of its path with SECRET (32 to \
             128 hex digits).",
        )],
    );
    tp(
        &mut r,
        [bold("OPTIONS")],
        [roman(
            "pssh=SYSTEM-UUID:BASE64 (a DRM system's pssh, repeatable), key-uri=URI and \
             key-format=FORMAT (HLS EXT-X-KEY), license-url=URL (DASH dashif:Laurl), \
             serve-key=yes (FILM/encryption.key answers the key; on by default for aes-128 \
             without key-uri). The front server's access rules protect FILM/encryption.key \
             as they protect the film. The file is read again on SIGHUP.",
        )],
    );

    sh(&mut r, "SIGNALS");
    pp(
        &mut r,
        [roman("To the master process (its pid is in --pid-file):")],
    );
    for (sig, what) in [
        (
            "SIGTERM, SIGINT",
            "Stop gracefully: close the listening sockets (new connections are refused at \
             once), remove the socket file the pool created, let answers in flight finish for \
             up to --shutdown-timeout, then kill the workers still running; exit 0.",
        ),
        (
            "SIGQUIT",
            "Stop at once: kill the workers, remove the socket file the pool created; exit 0.",
        ),
        (
            "SIGHUP",
            "Recycle the workers gracefully: start new ones, while the old ones serve what is \
             on their connections and exit within --shutdown-timeout. No request fails. The \
             flags are not read again; the --keys file is (an error keeps the old keys).",
        ),
        (
            "SIGUSR1",
            "Reopen --log-file, in the master and every worker (logrotate's postrotate).",
        ),
        ("SIGUSR2", "Logged and ignored."),
    ] {
        tp(&mut r, [bold(sig)], [roman(what)]);
    }
    pp(
        &mut r,
        [roman(
            "A worker that dies is started again; one that keeps dying is started again after \
             a growing pause.",
        )],
    );

    sh(&mut r, "FILES");
    for (file, what) in [
        (
            "--listen unix:PATH",
            "The socket file, which the pool creates with its mode and owner set before it \
             has its name. A socket file left by a pool that crashed is replaced at the next \
             start. It is removed when the pool stops, if the pool's user (--user) may remove \
             files in its folder; else the next start replaces it. Sockets handed to the pool \
             (on fd 0, or by systemd in LISTEN_FDS) are left alone.",
        ),
        (
            "--pid-file PATH",
            "The master's pid, written at start and removed at stop.",
        ),
        (
            "--log-file PATH",
            "The log, appended to; reopened on SIGUSR1.",
        ),
        (
            "--offload-dir DIR",
            "The clips' generated bytes for the front server to send (--offload).",
        ),
        (
            "/etc/systemd/system/mp4-fcgi.socket, mp4-fcgi.service",
            "Socket activation and the hardened service, from systemd/ in the source; the \
             service reads /etc/default/mp4-fcgi (AWS_* keys for --origin).",
        ),
        (
            "~/.aws/credentials, ~/.aws/config",
            "S3 keys and region for --origin s3:// and for cut and info on s3:// URLs, when \
             the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, \
             AWS_PROFILE, AWS_ENDPOINT_URL) does not give them.",
        ),
        (
            "/usr/local/share/man/man1/mp4-fcgi.1",
            "This page, once installed (see EXAMPLES).",
        ),
    ] {
        tp(&mut r, [bold(file)], [roman(what)]);
    }

    exit_status(&mut r, true);

    sh(&mut r, "EXAMPLES");
    pp(
        &mut r,
        [roman(
            "Development, without a front server (open http://127.0.0.1:8080/a.mp4?start=5):",
        )],
    );
    verbatim(
        &mut r,
        &["mp4-fcgi --http 127.0.0.1:8080 --root /srv/videos"],
    );
    pp(
        &mut r,
        [roman(
            "Production on Debian, behind nginx, lighttpd or Apache running as www-data; \
             --check first says whether the pool would start:",
        )],
    );
    verbatim(
        &mut r,
        &[
            "install -d -o root -g www-data -m 750 /run/mp4-fcgi",
            "mp4-fcgi --check --listen unix:/run/mp4-fcgi/mp4-fcgi.sock --root /srv/videos",
            "mp4-fcgi --listen unix:/run/mp4-fcgi/mp4-fcgi.sock \\",
            "    --socket-group www-data --socket-mode 660 --user nobody \\",
            "    --root /srv/videos --status-path /mp4-fcgi-status --pid-file /run/mp4-fcgi.pid",
            "kill -HUP $(cat /run/mp4-fcgi.pid)      # recycle the workers",
        ],
    );
    pp(&mut r, [roman("Clips, as a player asks for them:")]);
    verbatim(
        &mut r,
        &[
            "curl -o clip.mp4 'http://127.0.0.1:8080/a.mp4?start=45.5&end=60'",
            "curl 'http://127.0.0.1:8080/a.mp4/master.m3u8?start=30&end=90'",
        ],
    );
    pp(
        &mut r,
        [roman(
            "The same clip without a server, and a film's tracks:",
        )],
    );
    verbatim(
        &mut r,
        &[
            "mp4-fcgi cut a.mp4 clip.mp4 --start 45.5 --end 60",
            "mp4-fcgi info --json a.mp4",
        ],
    );
    pp(
        &mut r,
        [roman(
            "This page and the subcommands' pages: read one, or install them all \
             (/usr/local/share/man/man1 may not exist yet, as on Debian 12):",
        )],
    );
    verbatim(
        &mut r,
        &[
            "mp4-fcgi man | man -l -",
            "mkdir -p /usr/local/share/man/man1",
            "mp4-fcgi man > /usr/local/share/man/man1/mp4-fcgi.1",
            "for s in cut info completions man; do",
            "    mp4-fcgi man $s > /usr/local/share/man/man1/mp4-fcgi-$s.1",
            "done",
        ],
    );

    sh(&mut r, "SEE ALSO");
    let mut also = vec![];
    for name in SUBCOMMANDS {
        also.push(bold(format!("mp4-fcgi-{name}")));
        also.push(roman("(1), "));
    }
    also.extend([
        bold("nginx"),
        roman("(8), "),
        bold("lighttpd"),
        roman("(8), "),
        bold("spawn-fcgi"),
        roman("(1), "),
        bold("systemd.socket"),
        roman("(5)"),
    ]);
    r.text(also);
    r
}

/// EXIT STATUS, for the pool (`pool`) or for a subcommand.
fn exit_status(r: &mut Roff, pool: bool) {
    sh(r, "EXIT STATUS");
    let mut rows = vec![
        (
            "0",
            if pool {
                "The pool stopped on SIGTERM, SIGINT or SIGQUIT; --check found the \
                 configuration good; a subcommand did its work."
            } else {
                "The work is done."
            },
        ),
        (
            "2",
            if pool {
                "A flag or value is wrong, or the work could not be done (a listener that \
                 cannot be opened, a film that cannot be read); the reason is on stderr."
            } else {
                "A flag or value is wrong, or the work could not be done (a film that cannot \
                 be read, a window the server would refuse); the reason is on stderr."
            },
        ),
        (
            "141",
            "(killed by SIGPIPE) Standard output was closed before all was written (as in \
             mp4-fcgi info FILM | head -1): the command ends there, silently, as cat and head do.",
        ),
    ];
    if pool {
        rows.insert(
            1,
            (
                "1",
                "--check found the configuration wanting; the reason is on stderr.",
            ),
        );
    }
    for (code, what) in rows {
        tp(r, [bold(code)], [roman(what)]);
    }
}

fn sub_sections(name: &str) -> Roff {
    let mut r = Roff::new();
    let examples: &[&str] = match name {
        "cut" => {
            sh(&mut r, "OUTPUT");
            pp(
                &mut r,
                [roman(
                    "The bytes the server would send for the same window, and one line on \
                     stderr: the window asked, the key frame the output starts with, where \
                     it is shown from (with --client flash, the key frame: there is no edit \
                     list), its duration, the tracks and the size.",
                )],
            );
            &[
                "mp4-fcgi cut a.mp4 clip.mp4 --start 45.5 --end 60",
                "mp4-fcgi cut a.mp4 - --start 45.5 --client flash > flash.mp4",
                "mp4-fcgi cut s3://films/a.mp4 clip.mp4 --start 30",
            ]
        }
        "info" => &["mp4-fcgi info a.mp4", "mp4-fcgi info --json a.mp4"],
        "completions" => &["mp4-fcgi completions bash > /etc/bash_completion.d/mp4-fcgi"],
        _ => &[
            "mp4-fcgi man | man -l -",
            "mp4-fcgi man cut | man -l -",
            "mkdir -p /usr/local/share/man/man1",
            "mp4-fcgi man > /usr/local/share/man/man1/mp4-fcgi.1",
        ],
    };
    exit_status(&mut r, false);
    sh(&mut r, "EXAMPLES");
    verbatim(&mut r, examples);
    sh(&mut r, "SEE ALSO");
    r.text([bold("mp4-fcgi"), roman("(1)")]);
    r
}
