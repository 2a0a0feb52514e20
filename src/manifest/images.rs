//! Seek-bar previews in the manifests (pure text): sprites of pictures at
//! even intervals (`tiles-<n>.jpg`), announced where each kind of player
//! looks for them: the HLS image media playlist (`images.m3u8`, Roku and
//! Apple's `EXT-X-IMAGE-STREAM-INF`), the DASH-IF thumbnail adaptation set,
//! and a WebVTT track of `#xywh=` fragments (`thumbnails.vtt`).

use crate::mp4::cmaf::printed_seconds;
use crate::mp4::cmaf::thumbs::Tiles;
use std::fmt::Write;

/// A presentation's sprites: their tiles, how many, and their bit rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Images {
    pub tiles: Tiles,
    /// One tile's size in pixels.
    pub tile: (u32, u32),
    pub sprites: u32,
    /// The presentation's seconds.
    pub duration: f64,
}

impl Images {
    /// A sprite's size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (
            self.tile.0.saturating_mul(self.tiles.columns),
            self.tile.1.saturating_mul(self.tiles.rows),
        )
    }

    /// Bits per second a sprite takes, estimated before any is made: a
    /// detailed JPEG at quality 85 holds about 3 bits per pixel, over the
    /// seconds the first (longest) sprite covers: a whole span, or the
    /// whole of a shorter presentation.
    pub fn bandwidth(&self) -> u64 {
        let (w, h) = self.size();
        let bits = u64::from(w) * u64::from(h) * 3;
        ((bits as f64 / self.covers(1).max(0.001)).ceil() as u64).max(1)
    }

    fn layout(&self) -> String {
        format!("{}x{}", self.tiles.columns, self.tiles.rows)
    }

    /// Seconds sprite `n` (from 1) covers: its span, shorter at the end.
    fn covers(&self, n: u32) -> f64 {
        let start = f64::from(n.saturating_sub(1)) * self.tiles.span();
        (self.duration - start).clamp(0.0, self.tiles.span())
    }
}

/// The master playlist's line for the image playlist. Its RESOLUTION is
/// one tile's, as in `EXT-X-TILES` (players multiply it by the layout).
pub fn hls_stream(s: &mut String, i: &Images, query: &str) {
    let (w, h) = i.tile;
    let _ = writeln!(
        s,
        "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={},RESOLUTION={w}x{h},CODECS=\"jpeg\",URI=\"images.m3u8{query}\"",
        i.bandwidth()
    );
}

/// `images.m3u8`: each sprite a segment, its tiles described before it.
pub fn playlist(i: &Images, query: &str) -> String {
    // Every EXTINF, rounded, at most the target (RFC 8216 4.3.3.1): the
    // first sprite is the longest.
    let target = printed_seconds(i.covers(1))
        .parse::<f64>()
        .unwrap_or(0.0)
        .round()
        .max(1.0);
    let mut s = String::with_capacity(160 + i.sprites as usize * 90);
    let _ = writeln!(
        s,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-IMAGES-ONLY"
    );
    let (w, h) = i.tile;
    for n in 1..=i.sprites {
        let _ = write!(
            s,
            "#EXTINF:{},\n#EXT-X-TILES:RESOLUTION={w}x{h},LAYOUT={},DURATION={}\ntiles-{n}.jpg{query}\n",
            printed_seconds(i.covers(n)),
            i.layout(),
            printed_seconds(i.tiles.interval),
        );
    }
    s.push_str("#EXT-X-ENDLIST\n");
    s
}

/// The DASH-IF thumbnail adaptation set (IOP 4.3, 6.2.6); `q` is the
/// query, escaped for XML.
pub fn dash_set(s: &mut String, i: &Images, q: &str) {
    let (w, h) = i.size();
    let ms = (i.tiles.span() * 1000.0).round().max(1.0) as u64;
    let _ = write!(
        s,
        "<AdaptationSet id=\"{IMAGE_SET}\" contentType=\"image\" mimeType=\"image/jpeg\">\n\
         <SegmentTemplate timescale=\"1000\" duration=\"{ms}\" media=\"tiles-$Number$.jpg{q}\" \
         startNumber=\"1\"/>\n\
         <Representation id=\"thumbnails\" bandwidth=\"{}\" width=\"{w}\" height=\"{h}\">\n\
         <EssentialProperty schemeIdUri=\"http://dashif.org/thumbnail_tile\" value=\"{}\"/>\n\
         </Representation>\n</AdaptationSet>\n",
        i.bandwidth(),
        i.layout()
    );
}

/// The image set's id: past the audio, subtitle and trick-mode sets'.
const IMAGE_SET: u32 = 2000;

/// `thumbnails.vtt`: one cue per tile, its image a region of a sprite.
pub fn vtt(i: &Images, query: &str) -> String {
    let count = i.tiles.count(i.duration);
    let per = u64::from(i.tiles.per_sprite().max(1));
    let columns = u64::from(i.tiles.columns.max(1));
    let (w, h) = i.tile;
    let mut s = String::with_capacity(16 + count as usize * 80);
    s.push_str("WEBVTT\n");
    for k in 0..count {
        let start = k as f64 * i.tiles.interval;
        let end = (start + i.tiles.interval).min(i.duration);
        let (n, place) = (k / per + 1, k % per);
        let (x, y) = (
            (place % columns) * u64::from(w),
            (place / columns) * u64::from(h),
        );
        let _ = write!(
            s,
            "\n{} --> {}\ntiles-{n}.jpg{query}#xywh={x},{y},{w},{h}\n",
            timestamp(start),
            timestamp(end)
        );
    }
    s
}

/// `hh:mm:ss.ttt`.
fn timestamp(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(duration: f64) -> Images {
        let tiles = Tiles {
            interval: 10.0,
            columns: 5,
            rows: 2,
            width: 160,
        };
        Images {
            tiles,
            tile: (160, 90),
            sprites: tiles.sprites(duration),
            duration,
        }
    }

    #[test]
    fn every_tile_has_its_cue_and_place() {
        let i = images(125.0);
        assert_eq!(i.sprites, 2);
        let v = vtt(&i, "?start=3");
        assert_eq!(v.matches(" --> ").count(), 13);
        assert!(v.contains("00:00:00.000 --> 00:00:10.000\ntiles-1.jpg?start=3#xywh=0,0,160,90\n"));
        assert!(
            v.contains("00:01:30.000 --> 00:01:40.000\ntiles-1.jpg?start=3#xywh=640,90,160,90\n")
        );
        assert!(
            v.contains("00:02:00.000 --> 00:02:05.000\ntiles-2.jpg?start=3#xywh=320,0,160,90\n")
        );
    }

    #[test]
    fn the_image_playlist_lists_each_sprite_with_its_tiles() {
        let i = images(125.0);
        let p = playlist(&i, "");
        assert!(p.contains("#EXT-X-TARGETDURATION:100\n"));
        assert!(playlist(&images(20.0), "").contains("#EXT-X-TARGETDURATION:20\n"));
        assert!(p.contains(
            "#EXTINF:100.000000,\n#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=10.000000\ntiles-1.jpg\n"
        ));
        assert!(p.contains("#EXTINF:25.000000,\n"));
        assert!(p.ends_with("tiles-2.jpg\n#EXT-X-ENDLIST\n"));
        let mut m = String::new();
        hls_stream(&mut m, &i, "?end=9");
        assert!(m.contains("RESOLUTION=160x90,CODECS=\"jpeg\",URI=\"images.m3u8?end=9\""));
        let mut d = String::new();
        dash_set(&mut d, &i, "");
        assert!(d.contains("duration=\"100000\""));
        assert!(d.contains("value=\"5x2\""));
    }
}
