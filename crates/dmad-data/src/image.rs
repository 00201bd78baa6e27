//! Images: the MVTec AD folder layout, plain folders of normal images and NPY arrays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use image::{imageops, ImageBuffer, Luma, Pixel, Rgb};

use crate::dataset::{check_index, Dataset};
use crate::error::{list_files, Error, Result};
use crate::npy::{read_npy, NpyArray};

/// The channels of the loaded images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// One channel (RGB files are converted with the Rec. 709 luma weights of the image crate).
    Grey,
    /// Three channels (grey files are replicated).
    Rgb,
}

impl ColorMode {
    /// The number of channels.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grey => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// How an image is brought to the configured size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// The file must already have the configured size ([`Error::ImageSize`] otherwise).
    Exact,
    /// Resize (ignoring the aspect ratio) with the given filter.
    Resize(ResizeFilter),
    /// Cut the central window of the configured size; an image smaller than that is an
    /// [`Error::ImageSize`].
    CenterCrop,
}

/// The resampling filter of [`ResizeMode::Resize`] (the image crate's filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeFilter {
    /// Nearest neighbour.
    Nearest,
    /// Linear (triangle) filter.
    Triangle,
    /// Cubic Catmull-Rom filter.
    CatmullRom,
    /// Lanczos with window 3.
    Lanczos3,
}

impl ResizeFilter {
    fn to_image(self) -> imageops::FilterType {
        match self {
            ResizeFilter::Nearest => imageops::FilterType::Nearest,
            ResizeFilter::Triangle => imageops::FilterType::Triangle,
            ResizeFilter::CatmullRom => imageops::FilterType::CatmullRom,
            ResizeFilter::Lanczos3 => imageops::FilterType::Lanczos3,
        }
    }
}

/// How images are loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    /// Output width in pixels (no default: set by [`ImageConfig::new`]).
    pub width: u32,
    /// Output height in pixels (no default: set by [`ImageConfig::new`]).
    pub height: u32,
    /// Output channels. Default [`ColorMode::Grey`].
    pub color: ColorMode,
    /// How a file of another size is handled. Default `Resize(Triangle)`.
    pub resize: ResizeMode,
    /// Skip files that cannot be read when a folder is opened (they are listed by
    /// `skipped()`), instead of failing on the first. Default `false`.
    pub skip_bad: bool,
}

impl ImageConfig {
    /// A grey `width x height` configuration with the defaults above.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            color: ColorMode::Grey,
            resize: ResizeMode::Resize(ResizeFilter::Triangle),
            skip_bad: false,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidConfig {
                field: "width/height",
                reason: format!("must be positive, got {}x{}", self.width, self.height),
            });
        }
        Ok(())
    }
}

/// One image sample.
#[derive(Debug, Clone)]
pub struct ImageSample {
    /// The image, `[C, H, W]` in `[-1, 1]`, f32.
    pub image: Tensor,
    /// 0 = normal, 1 = anomalous.
    pub label: u8,
    /// The defect type (the MVTec folder name, `good` for normal images, or the class for NPY
    /// images).
    pub kind: String,
    /// The pixel mask `[1, H, W]` in `{0, 1}` (f32), where the dataset has masks.
    pub mask: Option<Tensor>,
    /// Where the sample came from (the file, or `file#index` for NPY arrays).
    pub source: String,
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]
        .iter()
        .any(|e| lower.ends_with(e))
}

fn open_reader(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(Error::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))
}

/// Reads only the header of an image file and returns its `(width, height)`.
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::Io`] or [`Error::Image`], each naming the file.
pub fn image_dimensions(path: impl AsRef<Path>) -> Result<(u32, u32)> {
    let path = path.as_ref();
    open_reader(path)?
        .into_dimensions()
        .map_err(|source| Error::Image {
            path: path.to_path_buf(),
            source,
        })
}

fn decode(path: &Path) -> Result<image::DynamicImage> {
    open_reader(path)?.decode().map_err(|source| Error::Image {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks that a `(w, h)` image can be brought to the configured size.
fn check_size(path: &Path, got: (u32, u32), cfg: &ImageConfig) -> Result<()> {
    let want = (cfg.width, cfg.height);
    let ok = match cfg.resize {
        ResizeMode::Exact => got == want,
        ResizeMode::Resize(_) => got.0 > 0 && got.1 > 0,
        ResizeMode::CenterCrop => got.0 >= want.0 && got.1 >= want.1,
    };
    if !ok {
        return Err(Error::ImageSize {
            path: path.to_path_buf(),
            expected: want,
            got,
        });
    }
    Ok(())
}

/// Crops or resizes `img` to the configured size and returns planar `[C, H, W]` values.
fn fit<P>(
    img: ImageBuffer<P, Vec<f32>>,
    cfg: &ImageConfig,
    filter: imageops::FilterType,
) -> Vec<f32>
where
    P: Pixel<Subpixel = f32> + 'static,
{
    let (w, h) = img.dimensions();
    let out = match cfg.resize {
        ResizeMode::Exact => img,
        ResizeMode::CenterCrop => {
            let x = (w - cfg.width) / 2;
            let y = (h - cfg.height) / 2;
            imageops::crop_imm(&img, x, y, cfg.width, cfg.height).to_image()
        }
        ResizeMode::Resize(_) if (w, h) == (cfg.width, cfg.height) => img,
        ResizeMode::Resize(_) => imageops::resize(&img, cfg.width, cfg.height, filter),
    };
    let c = P::CHANNEL_COUNT as usize;
    let n = (cfg.width * cfg.height) as usize;
    let mut planar = vec![0f32; c * n];
    for (i, px) in out.pixels().enumerate() {
        for (k, &v) in px.channels().iter().enumerate() {
            planar[k * n + i] = v;
        }
    }
    planar
}

fn resize_filter(cfg: &ImageConfig) -> imageops::FilterType {
    match cfg.resize {
        ResizeMode::Resize(f) => f.to_image(),
        _ => imageops::FilterType::Nearest,
    }
}

/// Decodes one image file to `[C, H, W]` in `[-1, 1]` (on the CPU).
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::Image`] or [`Error::ImageSize`], each naming the file.
pub fn load_image(path: impl AsRef<Path>, cfg: &ImageConfig) -> Result<Tensor> {
    load_image_on(path.as_ref(), cfg, &Device::Cpu)
}

fn load_image_on(path: &Path, cfg: &ImageConfig, device: &Device) -> Result<Tensor> {
    cfg.validate()?;
    let img = decode(path)?;
    check_size(path, (img.width(), img.height()), cfg)?;
    let planar = match cfg.color {
        ColorMode::Grey => fit(dyn_to_luma32f(&img), cfg, resize_filter(cfg)),
        ColorMode::Rgb => fit(img.to_rgb32f(), cfg, resize_filter(cfg)),
    };
    let c = cfg.color.channels();
    let t = Tensor::from_vec(planar, (c, cfg.height as usize, cfg.width as usize), device)?;
    Ok(t.affine(2.0, -1.0)?)
}

fn dyn_to_luma32f(img: &image::DynamicImage) -> ImageBuffer<Luma<f32>, Vec<f32>> {
    let l = img.to_luma32f();
    ImageBuffer::from_raw(l.width(), l.height(), l.into_raw()).expect("same size")
}

/// Decodes a mask file to `[1, H, W]` in `{0, 1}` (a pixel is 1 where its grey value is above
/// half the range), resized with the nearest neighbour or cropped like the image.
///
/// `image_size` is the `(width, height)` of the image the mask belongs to; a mask of another
/// size is an [`Error::ImageSize`].
///
/// # Errors
/// [`Error::EmptyFile`], [`Error::Image`] or [`Error::ImageSize`], each naming the mask file.
pub fn load_mask(
    path: impl AsRef<Path>,
    image_size: (u32, u32),
    cfg: &ImageConfig,
) -> Result<Tensor> {
    load_mask_on(path.as_ref(), image_size, cfg, &Device::Cpu)
}

fn load_mask_on(
    path: &Path,
    image_size: (u32, u32),
    cfg: &ImageConfig,
    device: &Device,
) -> Result<Tensor> {
    cfg.validate()?;
    let img = decode(path)?;
    let got = (img.width(), img.height());
    if got != image_size {
        return Err(Error::ImageSize {
            path: path.to_path_buf(),
            expected: image_size,
            got,
        });
    }
    let planar = fit(dyn_to_luma32f(&img), cfg, imageops::FilterType::Nearest);
    let bin: Vec<f32> = planar
        .iter()
        .map(|&v| if v > 0.5 { 1.0 } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(
        bin,
        (1, cfg.height as usize, cfg.width as usize),
        device,
    )?)
}

/// Which part of an MVTec AD folder to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train/good`.
    Train,
    /// Every folder of `test/`.
    Test,
}

#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    label: u8,
    kind: String,
    mask: MaskSource,
    size: (u32, u32),
}

#[derive(Debug, Clone)]
enum MaskSource {
    None,
    Zero,
    File(PathBuf),
}

/// A folder of images: either MVTec AD's layout ([`ImageFolder::mvtec`]) or a plain folder of
/// normal images ([`ImageFolder::plain`]). Files are listed and their headers checked when the
/// folder is opened; pixels are decoded by [`Dataset::get`].
#[derive(Debug, Clone)]
pub struct ImageFolder {
    entries: Vec<Entry>,
    skipped: Vec<(PathBuf, String)>,
    has_masks: bool,
    cfg: ImageConfig,
    device: Device,
}

impl ImageFolder {
    /// Opens `root` in MVTec AD's layout: `train/good/*` (split [`Split::Train`]) or
    /// `test/<kind>/*` (split [`Split::Test`]; `good` is normal, every other folder anomalous),
    /// with masks `ground_truth/<kind>/<stem>_mask.png` where `ground_truth/` exists (then a
    /// `good` image gets an all-zero mask).
    ///
    /// # Errors
    /// [`Error::Io`] if a folder is missing; the first bad file's error (header unreadable,
    /// [`Error::ImageSize`], a missing mask as [`Error::InvalidInput`]) unless
    /// `cfg.skip_bad` is set.
    pub fn mvtec(root: impl AsRef<Path>, split: Split, cfg: &ImageConfig) -> Result<Self> {
        cfg.validate()?;
        let root = root.as_ref();
        let gt = root.join("ground_truth");
        let has_masks = gt.is_dir();
        let mut folders = Vec::new();
        match split {
            Split::Train => folders.push(("good".to_string(), root.join("train").join("good"))),
            Split::Test => {
                let test = root.join("test");
                let rd = std::fs::read_dir(&test).map_err(|e| Error::io(&test, e))?;
                for entry in rd {
                    let p = entry.map_err(|e| Error::io(&test, e))?.path();
                    if p.is_dir() {
                        let kind = p
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned();
                        folders.push((kind, p));
                    }
                }
                folders.sort();
            }
        }
        let mut out = Self {
            entries: Vec::new(),
            skipped: Vec::new(),
            has_masks: has_masks && split == Split::Test,
            cfg: cfg.clone(),
            device: Device::Cpu,
        };
        for (kind, dir) in folders {
            let label = u8::from(kind != "good");
            for path in list_files(&dir, is_image_name)? {
                let mask = if !out.has_masks {
                    MaskSource::None
                } else if label == 0 {
                    MaskSource::Zero
                } else {
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                    MaskSource::File(gt.join(&kind).join(format!("{stem}_mask.png")))
                };
                out.add(path, label, kind.clone(), mask)?;
            }
        }
        Ok(out)
    }

    /// Opens a plain folder of normal images (every image file directly in `dir`, label 0).
    ///
    /// # Errors
    /// As [`ImageFolder::mvtec`].
    pub fn plain(dir: impl AsRef<Path>, cfg: &ImageConfig) -> Result<Self> {
        cfg.validate()?;
        let mut out = Self {
            entries: Vec::new(),
            skipped: Vec::new(),
            has_masks: false,
            cfg: cfg.clone(),
            device: Device::Cpu,
        };
        for path in list_files(dir.as_ref(), is_image_name)? {
            out.add(path, 0, "good".into(), MaskSource::None)?;
        }
        Ok(out)
    }

    /// Opens a list of image files (for example the matches of a pattern, or one file), each
    /// unlabelled: label 0, kind empty, no mask.
    ///
    /// # Errors
    /// As [`ImageFolder::mvtec`] for each file.
    pub fn files(paths: &[PathBuf], cfg: &ImageConfig) -> Result<Self> {
        cfg.validate()?;
        let mut out = Self {
            entries: Vec::new(),
            skipped: Vec::new(),
            has_masks: false,
            cfg: cfg.clone(),
            device: Device::Cpu,
        };
        for path in paths {
            out.add(path.clone(), 0, String::new(), MaskSource::None)?;
        }
        Ok(out)
    }

    fn add(&mut self, path: PathBuf, label: u8, kind: String, mask: MaskSource) -> Result<()> {
        let probe = (|| {
            let size = image_dimensions(&path)?;
            check_size(&path, size, &self.cfg)?;
            if let MaskSource::File(m) = &mask {
                if !m.is_file() {
                    return Err(Error::invalid(
                        &path,
                        None,
                        None,
                        format!("mask {} is missing", m.display()),
                    ));
                }
                let msize = image_dimensions(m)?;
                if msize != size {
                    return Err(Error::ImageSize {
                        path: m.clone(),
                        expected: size,
                        got: msize,
                    });
                }
            }
            Ok(size)
        })();
        match probe {
            Ok(size) => {
                self.entries.push(Entry {
                    path,
                    label,
                    kind,
                    mask,
                    size,
                });
                Ok(())
            }
            Err(e) if self.cfg.skip_bad => {
                self.skipped.push((path, e.to_string()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the samples' tensors on `device` (default CPU).
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The files skipped because they could not be read (only with `skip_bad`), with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Whether the samples carry masks.
    pub fn has_masks(&self) -> bool {
        self.has_masks
    }

    /// The image files, in sample order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().map(|e| e.path.as_path())
    }

    /// The labels (0 normal, 1 anomalous), in sample order, without decoding.
    pub fn labels(&self) -> Vec<u8> {
        self.entries.iter().map(|e| e.label).collect()
    }

    /// The kinds (folder names), in sample order, without decoding.
    pub fn kinds(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.kind.as_str()).collect()
    }
}

impl Dataset for ImageFolder {
    type Item = ImageSample;

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&self, index: usize) -> Result<ImageSample> {
        check_index(index, self.entries.len())?;
        let e = &self.entries[index];
        let image = load_image_on(&e.path, &self.cfg, &self.device)?;
        let mask = match &e.mask {
            MaskSource::None => None,
            MaskSource::Zero => Some(Tensor::zeros(
                (1, self.cfg.height as usize, self.cfg.width as usize),
                candle_core::DType::F32,
                &self.device,
            )?),
            MaskSource::File(m) => Some(load_mask_on(m, e.size, &self.cfg, &self.device)?),
        };
        Ok(ImageSample {
            image,
            label: e.label,
            kind: e.kind.clone(),
            mask,
            source: e.path.display().to_string(),
        })
    }
}

/// Images held in an NPY array `(N, H, W)` or `(N, H, W, C)`, with optional class labels
/// (MNIST's one-class protocol, see [`NpyImages::one_class`]).
///
/// Values are scaled to `[0, 1]` by the dtype's range (`u1`: 255, `u2`: 65535; floats are taken
/// to be in `[0, 1]` already) and then to `[-1, 1]`.
#[derive(Debug, Clone)]
pub struct NpyImages {
    pixels: Arc<NpyArray>,
    classes: Arc<Vec<i64>>,
    scale: f64,
    index: Vec<usize>,
    labels: Vec<u8>,
    path: PathBuf,
    cfg: ImageConfig,
    device: Device,
}

impl NpyImages {
    /// Reads `images` (and `labels`, a 1-D array of N class labels, if given); every sample's
    /// label is 0 until [`NpyImages::one_class`] sets them.
    ///
    /// # Errors
    /// As [`read_npy`]; [`Error::ShapeMismatch`] for an array that is not `(N, H, W[, C])` with
    /// C of 1 or 3, or labels that are not `(N,)`; [`Error::ImageSize`] as [`ResizeMode`] says.
    pub fn open(
        images: impl AsRef<Path>,
        labels: Option<&Path>,
        cfg: &ImageConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let path = images.as_ref().to_path_buf();
        let arr = read_npy(&path)?;
        let shape = arr.shape.clone();
        let ok = (shape.len() == 3) || (shape.len() == 4 && (shape[3] == 1 || shape[3] == 3));
        if !ok {
            return Err(Error::ShapeMismatch {
                context: path.display().to_string(),
                expected: "(N, H, W) or (N, H, W, C) with C in {1, 3}".into(),
                got: shape,
            });
        }
        let (n, h, w) = (shape[0], shape[1], shape[2]);
        check_size(&path, (w as u32, h as u32), cfg)?;
        let classes = match labels {
            Some(lp) => {
                let l = read_npy(lp)?;
                if l.shape != [n] {
                    return Err(Error::ShapeMismatch {
                        context: lp.display().to_string(),
                        expected: format!("({n},) labels"),
                        got: l.shape,
                    });
                }
                l.data.iter().map(|&v| v as i64).collect()
            }
            None => vec![0; n],
        };
        let scale = match &arr.descr[1..] {
            "u1" => 255.0,
            "u2" => 65535.0,
            _ => 1.0,
        };
        Ok(Self {
            pixels: Arc::new(arr),
            classes: Arc::new(classes),
            scale,
            index: (0..n).collect(),
            labels: vec![0; n],
            path,
            cfg: cfg.clone(),
            device: Device::Cpu,
        })
    }

    /// Creates the samples' tensors on `device` (default CPU).
    pub fn on_device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    /// The class label of each sample, in sample order.
    pub fn classes(&self) -> Vec<i64> {
        self.index.iter().map(|&i| self.classes[i]).collect()
    }

    /// The anomaly labels, in sample order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The one-class split of PROTOCOL.md (MNIST): train on the images of class `normal` whose
    /// index `i` has `i % 5 != 0`; test on every image with `i % 5 == 0`, anomalous where its
    /// class is not `normal`. Returns `(train, test)`.
    pub fn one_class(&self, normal: i64) -> (NpyImages, NpyImages) {
        let mut train = self.clone();
        let mut test = self.clone();
        train.index = self
            .index
            .iter()
            .copied()
            .filter(|&i| i % 5 != 0 && self.classes[i] == normal)
            .collect();
        train.labels = vec![0; train.index.len()];
        test.index = self.index.iter().copied().filter(|&i| i % 5 == 0).collect();
        test.labels = test
            .index
            .iter()
            .map(|&i| u8::from(self.classes[i] != normal))
            .collect();
        (train, test)
    }
}

impl Dataset for NpyImages {
    type Item = ImageSample;

    fn len(&self) -> usize {
        self.index.len()
    }

    fn get(&self, index: usize) -> Result<ImageSample> {
        check_index(index, self.index.len())?;
        let i = self.index[index];
        let s = &self.pixels.shape;
        let (h, w) = (s[1], s[2]);
        let c = if s.len() == 4 { s[3] } else { 1 };
        let per = h * w * c;
        let raw: Vec<f32> = self.pixels.data[i * per..(i + 1) * per]
            .iter()
            .map(|&v| (v / self.scale) as f32)
            .collect();
        let filter = resize_filter(&self.cfg);
        let planar = match (c, self.cfg.color) {
            (1, ColorMode::Grey) => fit(
                ImageBuffer::<Luma<f32>, _>::from_raw(w as u32, h as u32, raw).expect("size"),
                &self.cfg,
                filter,
            ),
            (1, ColorMode::Rgb) => {
                let rgb: Vec<f32> = raw.iter().flat_map(|&v| [v, v, v]).collect();
                fit(
                    ImageBuffer::<Rgb<f32>, _>::from_raw(w as u32, h as u32, rgb).expect("size"),
                    &self.cfg,
                    filter,
                )
            }
            (_, ColorMode::Rgb) => fit(
                ImageBuffer::<Rgb<f32>, _>::from_raw(w as u32, h as u32, raw).expect("size"),
                &self.cfg,
                filter,
            ),
            (_, ColorMode::Grey) => {
                let img =
                    ImageBuffer::<Rgb<f32>, _>::from_raw(w as u32, h as u32, raw).expect("size");
                fit(
                    dyn_to_luma32f(&image::DynamicImage::ImageRgb32F(img)),
                    &self.cfg,
                    filter,
                )
            }
        };
        let ch = self.cfg.color.channels();
        let image = Tensor::from_vec(
            planar,
            (ch, self.cfg.height as usize, self.cfg.width as usize),
            &self.device,
        )?
        .affine(2.0, -1.0)?;
        Ok(ImageSample {
            image,
            label: self.labels[index],
            kind: self.classes[i].to_string(),
            mask: None,
            source: format!("{}#{i}", self.path.display()),
        })
    }
}
