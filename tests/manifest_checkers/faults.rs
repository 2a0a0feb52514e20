//! The seek-bar previews' faults, one a line: (from, to, wanted), each
//! applied to tests/manifest_checkers.rs's correct manifests.

/// The master's EXT-X-IMAGE-STREAM-INF (Roku and Apple's convention).
#[rustfmt::skip]
pub const IMAGE_STREAM_FAULTS: &[(&str, &str, &str)] = &[
    ("BANDWIDTH=4320,", "", "#EXT-X-IMAGE-STREAM-INF has no BANDWIDTH"),
    ("=4320", "=4.3e3", "BANDWIDTH=4.3e3 is not a decimal-integer"),
    ("=160x90", "=160:90", "RESOLUTION=160:90 is not a decimal-resolution"),
    ("CODECS=\"jpeg\",", "", "EXT-X-IMAGE-STREAM-INF has no CODECS"),
    ("\"jpeg\"", "jpeg", "CODECS=jpeg is not a quoted-string"),
    ("\"jpeg\"", "\"avc1.64000C\"", "CODECS \"avc1.64000C\" is not \"jpeg\""),
    (",URI=\"images.m3u8\"", "", "#EXT-X-IMAGE-STREAM-INF has no URI"),
    ("\"images.m3u8\"", "\"\"", "URI is an empty URI"),
    ("\"images.m3u8\"", "images.m3u8", "URI=images.m3u8 is not a quoted-string"),
    ("\"jpeg\"", "\"jpeg\",LAYOUT=5x2", "unknown attribute LAYOUT"),
    ("images.m3u8\"\n", "x\"\nimages.m3u8\n", "URI \"images.m3u8\" follows no EXT-X-STREAM-INF"),
    ("#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-IMAGES-ONLY\n", "IMAGES-ONLY has no place in a master"),
];

/// `images.m3u8`, its EXT-X-IMAGES-ONLY and EXT-X-TILES.
#[rustfmt::skip]
pub const IMAGES_FAULTS: &[(&str, &str, &str)] = &[
    ("#EXT-X-IMAGES-ONLY\n", "", "stream's playlist without EXT-X-IMAGES-ONLY"),
    ("#EXT-X-IMAGES-ONLY\n", "", "EXT-X-TILES without EXT-X-IMAGES-ONLY"),
    ("#EXT-X-IMAGES-ONLY\n", "#EXT-X-IMAGES-ONLY\n#EXT-X-IMAGES-ONLY\n", "more than once"),
    ("#EXT-X-IMAGES-ONLY\n", "#EXT-X-IMAGES-ONLY\n#EXT-X-I-FRAMES-ONLY\n", "both EXT-X-IMAGES"),
    ("ONLY\n", "ONLY\n#EXT-X-MAP:URI=\"init.mp4\"\n", "an EXT-X-MAP in an image playlist"),
    ("#EXT-X-ENDLIST\n", "", "an image playlist without EXT-X-ENDLIST"),
    ("#EXT-X-PLAYLIST-TYPE:VOD\n", "", "not EXT-X-PLAYLIST-TYPE:VOD"),
    (":VOD", ":EVENT", "not EXT-X-PLAYLIST-TYPE:VOD"),
    ("20.000000,", "20.600000,", "EXTINF 20.6 rounds above EXT-X-TARGETDURATION 20"),
    ("#EXTINF:5.000000,", "#EXTINF:4.000000,", "EXTINFs sum to 24.000000 s, the presentation"),
    ("#EXT-X-TILES:", "#EXT-X-TILE:", "unknown tag #EXT-X-TILE"),
    ("\ntiles-1", "\n#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=2\ntiles-1", "a second EXT-X-TILES"),
    ("#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=2.000000\n", "", "has no EXT-X-TILES"),
    ("tiles-2.jpg\n", "tiles-2.jpg\n#EXT-X-TILES:RESOLUTION=160x90,LAYOUT=5x2,DURATION=2\n", "no segment after"),
    ("=160x90,LAYOUT", "=320x180,LAYOUT", "320x180 is not the EXT-X-IMAGE-STREAM-INF's 160x90"),
    ("=160x90,LAYOUT", "=160x0,LAYOUT", "EXT-X-TILES RESOLUTION is not positive"),
    (",LAYOUT=5x2", "", "#EXT-X-TILES has no LAYOUT"),
    ("LAYOUT=5x2", "LAYOUT=5", "LAYOUT=5 is not a decimal-resolution"),
    ("LAYOUT=5x2", "LAYOUT=0x2", "EXT-X-TILES LAYOUT is not positive"),
    ("LAYOUT=5x2", "LAYOUT=5x1", "5 tiles of 2 s last less than \"tiles-1.jpg\"'s EXTINF 20"),
    (",DURATION=2.000000", "", "#EXT-X-TILES has no DURATION"),
    ("=2.000000", "=2s", "DURATION=2s is not a decimal-floating-point"),
    ("=2.000000", "=0.0", "EXT-X-TILES DURATION is not positive"),
    ("=2.000000", "=1.990000", "10 tiles of 1.99 s last less than"),
];

/// The DASH-IF thumbnail set (IOP 6.2.6).
#[rustfmt::skip]
pub const THUMBNAIL_SET_FAULTS: &[(&str, &str, &str)] = &[
    ("image/jpeg", "image/webp", "no @codecs on it or its AdaptationSet"),
    (" width=\"800\"", "", "an image Representation without @width"),
    (" height=\"180\">\n<Ess", ">\n<Ess", "an image Representation without @height"),
    ("<EssentialProperty schemeIdUri", "<SupplementalProperty schemeIdUri", "without an Essential"),
    ("dashif.org/thumbnail_tile", "dashif.org/thumbnails", "without an EssentialProperty"),
    ("\"5x2\"", "\"5\"", "thumbnail_tile value \"5\" is not CxR"),
    ("\"5x2\"", "\"0x2\"", "thumbnail_tile value \"0x2\" is not CxR"),
    ("\"5x2\"", "\"3x2\"", "@width 800 is not 3 whole tiles"),
    ("\"5x2\"", "\"5x7\"", "@height 180 is not 7 whole tiles"),
    ("tiles-$Number$.jpg", "tiles.jpg", "image @media \"tiles.jpg\" has no $Number$"),
    (" media=\"tiles-$Number$.jpg\"", "", "without SegmentTemplate@media"),
    (" duration=\"20000\"", "", "its SegmentTemplate has no @duration"),
    ("\"20000\"", "\"10000\" endNumber=\"1\"", "segments of 10000/1000 s end before the Period's 20 s"),
    (" mediaPresentationDuration=\"PT20.000S\"", "", "the Period's duration is not known"),
];
