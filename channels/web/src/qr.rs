//! QR codes of the mailboxes (信箱二维码): printed on posters and notices in the street and the
//! community hall; scanned, they open the mailbox's form. PNG for print shops and chat apps, SVG
//! for designers. The matrix comes from the `qrcode` crate; drawing it is a few lines here, so the
//! front needs no imaging library.

use qrcode::{Color, EcLevel, QrCode};

use crate::Error;

/// Light modules around the code, as the standard asks, so scanners find its edges.
const QUIET_ZONE: usize = 4;

/// The code's modules, dark or not, quiet zone included, row by row.
fn modules(url: &str) -> Result<(usize, Vec<bool>), Error> {
    // Level M survives a poster's creases and dirt (15 %) and keeps the code small.
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(|e| Error::Qr(e.to_string()))?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let mut dark = vec![false; size * size];
    for y in 0..width {
        for x in 0..width {
            dark[(y + QUIET_ZONE) * size + x + QUIET_ZONE] = colors[y * width + x] == Color::Dark;
        }
    }
    Ok((size, dark))
}

/// A PNG of the code for `url`, `scale` pixels per module (grey, 8 bits).
pub fn png(url: &str, scale: usize) -> Result<Vec<u8>, Error> {
    let (size, dark) = modules(url)?;
    let side = size * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        let (mx, my) = (i % size, i / size);
        for y in my * scale..(my + 1) * scale {
            pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
        }
    }
    let mut out = Vec::new();
    let side = u32::try_from(side).map_err(|_| Error::Qr("the code is too large".into()))?;
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| Error::Qr(e.to_string()))?;
    writer.write_image_data(&pixels).map_err(|e| Error::Qr(e.to_string()))?;
    writer.finish().map_err(|e| Error::Qr(e.to_string()))?;
    Ok(out)
}

/// An SVG of the code for `url`: one path, crisp at any size.
pub fn svg(url: &str) -> Result<String, Error> {
    let (size, dark) = modules(url)?;
    let mut path = String::new();
    for (i, _) in dark.iter().enumerate().filter(|(_, d)| **d) {
        path.push_str(&format!("M{} {}h1v1h-1z", i % size, i / size));
    }
    Ok(format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{px}" height="{px}" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="{path}"/></svg>"##,
        px = size * 8
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_drawn_with_a_quiet_zone() {
        let (size, dark) = modules("https://example.org/mailbox/secretary_mailbox").unwrap();
        assert!(size >= 21 + 2 * QUIET_ZONE);
        assert!(!dark[..size * QUIET_ZONE].iter().any(|d| *d), "the top rows are light");
        let png = png("https://example.org/m", 4).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = svg("https://example.org/m").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("M4 4h1v1h-1z"), "the finder pattern starts at the quiet zone");
    }
}
