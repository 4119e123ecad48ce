//! Fashion-MNIST on disk: IDX files (gzipped or not) or the CSV form (`label,pixel1..pixel784`).
//!
//! Every failure names the file, says what was wrong and how to get good data, because the
//! usual cause is a missing or half-downloaded dataset, not a bug.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use fashion_model::{IMAGE_PIXELS, IMAGE_SIDE, LabelledImages, NUM_CLASSES};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

/// Where to get the data, appended to every "missing data" error.
pub const HOW_TO_GET: &str = "install it with `apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/fashion-mnist), \
or pass --data-dir / set FASHION_MNIST_DIR to a folder holding train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], \
t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (or fashion-mnist_train.csv and fashion-mnist_test.csv)";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no Fashion-MNIST data found (looked in {searched}); {HOW_TO_GET}")]
    NotFound { searched: String },
    #[error("{path}: {problem}; the file is damaged or not Fashion-MNIST — {HOW_TO_GET}")]
    Invalid { path: PathBuf, problem: String },
    #[error("{path}: cannot read it: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn invalid(path: &Path, problem: impl Into<String>) -> DataError {
    DataError::Invalid { path: path.to_path_buf(), problem: problem.into() }
}

/// The report's split: shuffle with `seed`, hold out a tenth for validation
/// (60,000 → 54,000 / 6,000).
pub fn train_val_split(images: &LabelledImages, seed: u64) -> (LabelledImages, LabelledImages) {
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    let val = (images.len() / 10).max(1).min(images.len().saturating_sub(1));
    let (v, t) = order.split_at(val);
    (images.select(t), images.select(v))
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub train: LabelledImages,
    pub test: LabelledImages,
    /// Folder the data came from, for the log and the report.
    pub source: PathBuf,
}

/// Candidate folders, in priority order: the flag, `$FASHION_MNIST_DIR`, the Debian package,
/// `data/fashion-mnist`.
pub fn candidate_dirs(flag: Option<&Path>) -> Vec<PathBuf> {
    if let Some(dir) = flag {
        return vec![dir.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(env) = std::env::var_os("FASHION_MNIST_DIR") {
        dirs.push(PathBuf::from(env));
    }
    dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
    dirs.push(PathBuf::from("data/fashion-mnist"));
    dirs
}

/// Loads train and test sets from the first candidate folder that has them.
pub fn load(flag: Option<&Path>) -> Result<Dataset, DataError> {
    let dirs = candidate_dirs(flag);
    for dir in &dirs {
        if let Some(found) = load_dir(dir)? {
            return Ok(found);
        }
    }
    Err(DataError::NotFound { searched: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ") })
}

/// `Ok(None)` when the folder holds no dataset at all; an error when it holds a broken one.
fn load_dir(dir: &Path) -> Result<Option<Dataset>, DataError> {
    let idx = |stem: &str| find_file(dir, &[format!("{stem}.gz"), stem.to_string()]);
    let (tri, trl, tei, tel) =
        (idx("train-images-idx3-ubyte"), idx("train-labels-idx1-ubyte"), idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte"));
    if tri.is_some() || trl.is_some() || tei.is_some() || tel.is_some() {
        let need = |p: Option<PathBuf>, name: &str| {
            p.ok_or_else(|| invalid(&dir.join(format!("{name}.gz")), "missing (the other IDX files are there)"))
        };
        let train = read_idx_pair(&need(tri, "train-images-idx3-ubyte")?, &need(trl, "train-labels-idx1-ubyte")?)?;
        let test = read_idx_pair(&need(tei, "t10k-images-idx3-ubyte")?, &need(tel, "t10k-labels-idx1-ubyte")?)?;
        return Ok(Some(Dataset { train, test, source: dir.to_path_buf() }));
    }
    let csv = |stem: &str| find_file(dir, &[format!("{stem}.csv"), format!("{stem}.csv.gz")]);
    if let (Some(train), Some(test)) = (csv("fashion-mnist_train"), csv("fashion-mnist_test")) {
        return Ok(Some(Dataset { train: read_csv(&train)?, test: read_csv(&test)?, source: dir.to_path_buf() }));
    }
    Ok(None)
}

fn find_file(dir: &Path, names: &[String]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// Reads a file, gunzipping it when it starts with the gzip signature.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| invalid(path, format!("gzip data is corrupt or truncated ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses an IDX image file (magic 0x0803, dims n×28×28).
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.len() < 16 {
        return Err(invalid(path, format!("only {} bytes, too short for an IDX image header", bytes.len())));
    }
    let magic = be_u32(bytes, 0);
    if magic != 0x0803 {
        return Err(invalid(path, format!("magic number is {magic:#06x}, expected 0x0803 (IDX unsigned-byte images)")));
    }
    let (n, rows, cols) = (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
        return Err(invalid(path, format!("images are {rows}×{cols}, expected 28×28")));
    }
    let expected = 16 + n * IMAGE_PIXELS;
    if bytes.len() != expected {
        return Err(invalid(path, format!("header says {n} images ({expected} bytes) but the file has {} bytes", bytes.len())));
    }
    Ok(bytes[16..].to_vec())
}

/// Parses an IDX label file (magic 0x0801), checking every label is 0..=9.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    if bytes.len() < 8 {
        return Err(invalid(path, format!("only {} bytes, too short for an IDX label header", bytes.len())));
    }
    let magic = be_u32(bytes, 0);
    if magic != 0x0801 {
        return Err(invalid(path, format!("magic number is {magic:#06x}, expected 0x0801 (IDX unsigned-byte labels)")));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(invalid(path, format!("header says {n} labels but the file has {} label bytes", bytes.len() - 8)));
    }
    let labels = bytes[8..].to_vec();
    if let Some(pos) = labels.iter().position(|&l| l as usize >= NUM_CLASSES) {
        return Err(invalid(path, format!("label {} at index {pos} is not a class (0-9)", labels[pos])));
    }
    Ok(labels)
}

fn read_idx_pair(images: &Path, labels: &Path) -> Result<LabelledImages, DataError> {
    let pixels = parse_idx_images(&read_maybe_gz(images)?, images)?;
    let labels_v = parse_idx_labels(&read_maybe_gz(labels)?, labels)?;
    if pixels.len() / IMAGE_PIXELS != labels_v.len() {
        return Err(invalid(
            labels,
            format!("{} labels for {} images in {}", labels_v.len(), pixels.len() / IMAGE_PIXELS, images.display()),
        ));
    }
    Ok(LabelledImages { pixels, labels: labels_v })
}

/// Parses the CSV form: a header line, then `label,pixel1,…,pixel784` per line.
pub fn parse_csv(text: &str, path: &Path) -> Result<LabelledImages, DataError> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(invalid(path, "the file is empty"));
    };
    if !header.trim_start().starts_with("label") {
        return Err(invalid(path, "first line should be the header `label,pixel1,...,pixel784`"));
    }
    let mut split = LabelledImages::default();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = i + 1;
        let mut fields = line.split(',');
        let label: u8 = fields
            .next()
            .and_then(|f| f.trim().parse().ok())
            .filter(|&l: &u8| (l as usize) < NUM_CLASSES)
            .ok_or_else(|| invalid(path, format!("line {line_no}: the label is not a class number 0-9")))?;
        let before = split.pixels.len();
        for field in fields {
            let v: u8 =
                field.trim().parse().map_err(|_| invalid(path, format!("line {line_no}: pixel `{field}` is not a number 0-255")))?;
            split.pixels.push(v);
        }
        let count = split.pixels.len() - before;
        if count != IMAGE_PIXELS {
            return Err(invalid(path, format!("line {line_no}: {count} pixels, expected 784 (the file may be cut short)")));
        }
        split.labels.push(label);
    }
    if split.is_empty() {
        return Err(invalid(path, "no images after the header"));
    }
    Ok(split)
}

fn read_csv(path: &Path) -> Result<LabelledImages, DataError> {
    let bytes = read_maybe_gz(path)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(path, "not a text file"))?;
    parse_csv(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(n: usize) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [n as u32, 28, 28] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..n * IMAGE_PIXELS).map(|i| (i % 251) as u8));
        b
    }

    fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        b.extend_from_slice(labels);
        b
    }

    #[test]
    fn parses_valid_idx() {
        let p = Path::new("x");
        let px = parse_idx_images(&idx_images(3), p).unwrap();
        assert_eq!(px.len(), 3 * 784);
        assert_eq!(px[1], 1);
        assert_eq!(parse_idx_labels(&idx_labels(&[0, 9, 4]), p).unwrap(), vec![0, 9, 4]);
    }

    #[test]
    fn rejects_corrupt_idx_with_the_file_name_and_reason() {
        let p = Path::new("/data/train-images-idx3-ubyte");
        let mut bad_magic = idx_images(2);
        bad_magic[3] = 1;
        let e = parse_idx_images(&bad_magic, p).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte") && e.contains("magic"), "{e}");
        assert!(e.contains("apt-get install dataset-fashion-mnist"), "{e}");

        let mut truncated = idx_images(2);
        truncated.truncate(500);
        let e = parse_idx_images(&truncated, p).unwrap_err().to_string();
        assert!(e.contains("header says 2 images"), "{e}");

        let e = parse_idx_images(&[0, 0, 8], p).unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");

        let e = parse_idx_labels(&idx_labels(&[1, 12]), p).unwrap_err().to_string();
        assert!(e.contains("label 12"), "{e}");
        let mut short = idx_labels(&[1, 2, 3]);
        short.pop();
        assert!(parse_idx_labels(&short, p).is_err());
    }

    #[test]
    fn reads_gzipped_files_and_reports_a_broken_gzip() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx_labels(&[3, 1])).unwrap();
        let gz = gz.finish().unwrap();
        fs::write(&path, &gz).unwrap();
        assert_eq!(parse_idx_labels(&read_maybe_gz(&path).unwrap(), &path).unwrap(), vec![3, 1]);
        fs::write(&path, &gz[..gz.len() - 6]).unwrap();
        let e = read_maybe_gz(&path).unwrap_err().to_string();
        assert!(e.contains("labels.gz") && e.contains("gzip"), "{e}");
    }

    #[test]
    fn parses_csv_and_rejects_bad_rows() {
        let p = Path::new("train.csv");
        let row = |label: &str, n: usize| {
            let mut s = label.to_string();
            for i in 0..n {
                s.push_str(&format!(",{}", i % 256));
            }
            s
        };
        let header = "label,".to_string() + &(1..=784).map(|i| format!("pixel{i}")).collect::<Vec<_>>().join(",");
        let good = format!("{header}\n{}\n{}\n", row("2", 784), row("7", 784));
        let split = parse_csv(&good, p).unwrap();
        assert_eq!(split.labels, vec![2, 7]);
        assert_eq!(split.image(1)[5], 5);

        let short = format!("{header}\n{}\n", row("2", 700));
        assert!(parse_csv(&short, p).unwrap_err().to_string().contains("line 2: 700 pixels"));
        let bad_label = format!("{header}\n{}\n", row("11", 784));
        assert!(parse_csv(&bad_label, p).unwrap_err().to_string().contains("label"));
        let bad_pixel = format!("{header}\n{},300\n", row("1", 783));
        assert!(parse_csv(&bad_pixel, p).unwrap_err().to_string().contains("`300`"));
        assert!(parse_csv("", p).is_err());
        assert!(parse_csv("1,2,3\n", p).unwrap_err().to_string().contains("header"));
    }

    #[test]
    fn loads_a_folder_and_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("train-images-idx3-ubyte"), idx_images(4)).unwrap();
        fs::write(dir.path().join("train-labels-idx1-ubyte"), idx_labels(&[0, 1, 2, 3])).unwrap();
        fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx_images(2)).unwrap();
        let e = load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("missing"), "{e}");
        fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx_labels(&[5, 6])).unwrap();
        let data = load(Some(dir.path())).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (4, 2));

        let empty = tempfile::tempdir().unwrap();
        let e = load(Some(empty.path())).unwrap_err().to_string();
        assert!(e.contains("no Fashion-MNIST data found") && e.contains("apt-get"), "{e}");
    }

    #[test]
    fn split_is_deterministic_and_disjoint() {
        let split = LabelledImages {
            pixels: (0..100 * 784).map(|i| (i / 784) as u8).collect(),
            labels: (0..100).map(|i| (i % 10) as u8).collect(),
        };
        let (t1, v1) = train_val_split(&split, 42);
        let (t2, v2) = train_val_split(&split, 42);
        assert_eq!((t1.len(), v1.len()), (90, 10));
        assert_eq!(v1.pixels, v2.pixels);
        assert_eq!(t1.pixels, t2.pixels);
        let val_ids: Vec<u8> = (0..10).map(|i| v1.image(i)[0]).collect();
        assert!((0..90).all(|i| !val_ids.contains(&t1.image(i)[0])));
    }
}
