//! Reading and writing diffusers' `scheduler_config.json`: which scheduler class, its noise
//! schedule and its options.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use candle_core::Tensor;
use dmad_core::PredictionType;
use serde_json::{Map, Value};

use crate::options::{
    DpmSolverAlgorithm, DpmSolverType, FinalSigmas, SigmaInterpolation, VarianceType,
};
use crate::sampler::{Plan, Sampler};
use crate::{
    BetaSchedule, DdimConfig, DdimSampler, DdpmConfig, DdpmSampler, DpmSolverConfig,
    DpmSolverSampler, Error, EulerConfig, EulerSampler, NoiseSchedule, NoiseScheduleConfig, Result,
    TimestepSpacing,
};

/// The diffusers version whose scheduler configs this module reads and writes.
pub const DIFFUSERS_VERSION: &str = "0.42.1";

/// The options of one of diffusers' scheduler classes: which sampler, and how it is set up.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerConfig {
    /// `DDPMScheduler`.
    Ddpm(DdpmConfig),
    /// `DDIMScheduler`.
    Ddim(DdimConfig),
    /// `DPMSolverMultistepScheduler`.
    DpmSolver(DpmSolverConfig),
    /// `EulerDiscreteScheduler`.
    Euler(EulerConfig),
}

impl SamplerConfig {
    /// diffusers' class name (`_class_name`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Self::Ddpm(_) => "DDPMScheduler",
            Self::Ddim(_) => "DDIMScheduler",
            Self::DpmSolver(_) => "DPMSolverMultistepScheduler",
            Self::Euler(_) => "EulerDiscreteScheduler",
        }
    }

    /// The number of inference steps (not part of diffusers' config: its `set_timesteps`
    /// argument).
    pub fn num_inference_steps(&self) -> usize {
        match self {
            Self::Ddpm(c) => c.num_inference_steps,
            Self::Ddim(c) => c.num_inference_steps,
            Self::DpmSolver(c) => c.num_inference_steps,
            Self::Euler(c) => c.num_inference_steps,
        }
    }

    /// Sets the number of inference steps.
    pub fn set_num_inference_steps(&mut self, n: usize) {
        match self {
            Self::Ddpm(c) => c.num_inference_steps = n,
            Self::Ddim(c) => c.num_inference_steps = n,
            Self::DpmSolver(c) => c.num_inference_steps = n,
            Self::Euler(c) => c.num_inference_steps = n,
        }
    }

    /// The prediction type the sampler expects.
    pub fn prediction_type(&self) -> PredictionType {
        match self {
            Self::Ddpm(c) => c.prediction_type,
            Self::Ddim(c) => c.prediction_type,
            Self::DpmSolver(c) => c.prediction_type,
            Self::Euler(c) => c.prediction_type,
        }
    }

    /// Builds the sampler on `schedule`.
    ///
    /// # Errors
    /// The errors of the sampler's `new`.
    pub fn build(&self, schedule: &NoiseSchedule) -> Result<AnySampler> {
        Ok(match self {
            Self::Ddpm(c) => AnySampler::Ddpm(DdpmSampler::new(schedule, c.clone())?),
            Self::Ddim(c) => AnySampler::Ddim(DdimSampler::new(schedule, c.clone())?),
            Self::DpmSolver(c) => {
                AnySampler::DpmSolver(DpmSolverSampler::new(schedule, c.clone())?)
            }
            Self::Euler(c) => AnySampler::Euler(EulerSampler::new(schedule, c.clone())?),
        })
    }
}

/// A diffusers scheduler as its `scheduler_config.json` describes it: the noise schedule, the
/// trained betas if any, and the sampler with its options.
///
/// [`SchedulerConfig::from_diffusers_json`] reads the four classes `DDPMScheduler`,
/// `DDIMScheduler`, `DPMSolverMultistepScheduler` and `EulerDiscreteScheduler` as diffusers
/// 0.42.1 writes them: a missing field takes diffusers' default (not this crate's: diffusers
/// clips samples by default), and a field this crate does not know, or a value it cannot honour,
/// is an error naming the field, never silently ignored. docs/SAMPLERS.md lists the options.
///
/// What diffusers passes to `set_timesteps` and `step` rather than keeping in its config (the
/// number of steps, custom timesteps, DDIM's `eta` and `use_clipped_model_output`, Euler's
/// churn) is not read or written: set it on [`SchedulerConfig::sampler`].
///
/// # Example
/// ```
/// use dmad_diffusion::{Sampler, SchedulerConfig};
///
/// # fn main() -> dmad_diffusion::Result<()> {
/// let json = r#"{
///   "_class_name": "DPMSolverMultistepScheduler",
///   "_diffusers_version": "0.42.1",
///   "beta_schedule": "scaled_linear",
///   "beta_start": 0.00085,
///   "beta_end": 0.012,
///   "use_karras_sigmas": true,
///   "lambda_min_clipped": -Infinity,
///   "trained_betas": null
/// }"#;
/// let mut config = SchedulerConfig::from_diffusers_json(json)?;
/// config.sampler.set_num_inference_steps(25);
/// let (_schedule, sampler) = config.build()?;
/// assert_eq!(sampler.timesteps().len(), 25);
///
/// // Written back, it reads the same.
/// let again = SchedulerConfig::from_diffusers_json(&config.to_diffusers_json())?;
/// assert_eq!(again.sampler.class_name(), "DPMSolverMultistepScheduler");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// The noise schedule (`num_train_timesteps`, `beta_*`, `rescale_betas_zero_snr`).
    pub schedule: NoiseScheduleConfig,
    /// diffusers' `trained_betas`: betas that replace `beta_schedule`. Default `None`.
    pub trained_betas: Option<Vec<f64>>,
    /// The sampler and its options.
    pub sampler: SamplerConfig,
}

impl SchedulerConfig {
    /// Reads a diffusers `scheduler_config.json` (its text). `NaN`, `Infinity` and `-Infinity`
    /// (which Python writes, e.g. `"lambda_min_clipped": -Infinity`) are accepted.
    ///
    /// # Errors
    /// [`Error::Json`] if the text is not a JSON object; [`Error::UnknownClass`] for a
    /// `_class_name` other than the four samplers; [`Error::UnknownField`] for a field the class
    /// does not have in diffusers 0.42.1; [`Error::Unsupported`] for an option value this crate
    /// does not implement; [`Error::InvalidConfig`] for a value of the wrong type or out of
    /// range. Each names the field.
    pub fn from_diffusers_json(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(&quote_non_finite(text))?;
        let Value::Object(map) = value else {
            return Err(Error::InvalidConfig {
                field: "_class_name",
                reason: "a scheduler config must be a JSON object".into(),
            });
        };
        Reader::new(map)?.read()
    }

    /// Reads a diffusers `scheduler_config.json` file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, otherwise [`Error::ConfigFile`] with the path
    /// and the error of [`SchedulerConfig::from_diffusers_json`].
    pub fn from_diffusers_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_diffusers_json(&text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Writes the config as diffusers 0.42.1 writes it (`to_json_string`: every field of the
    /// class, keys sorted, two-space indent; `lambda_min_clipped` of `None` as `-Infinity`).
    /// [`SchedulerConfig::from_diffusers_json`] reads it back to an equal config, up to the
    /// sampler fields diffusers does not keep in its config.
    pub fn to_diffusers_json(&self) -> String {
        let mut m: BTreeMap<&'static str, J> = BTreeMap::new();
        let s = &self.schedule;
        m.insert("_class_name", J::Str(self.sampler.class_name().into()));
        m.insert("_diffusers_version", J::Str(DIFFUSERS_VERSION.into()));
        m.insert("num_train_timesteps", J::Int(s.num_train_timesteps as u64));
        m.insert("beta_start", J::Num(s.beta_start));
        m.insert("beta_end", J::Num(s.beta_end));
        m.insert("beta_schedule", J::Str(s.beta_schedule.as_str().into()));
        m.insert(
            "trained_betas",
            self.trained_betas.clone().map_or(J::Null, J::Nums),
        );
        m.insert("rescale_betas_zero_snr", J::Bool(s.rescale_betas_zero_snr));
        let common = |m: &mut BTreeMap<&'static str, J>,
                      pred: PredictionType,
                      spacing: TimestepSpacing,
                      offset: usize| {
            m.insert("prediction_type", J::Str(pred.as_str().into()));
            m.insert("timestep_spacing", J::Str(spacing.as_str().into()));
            m.insert("steps_offset", J::Int(offset as u64));
        };
        let thresholding = |m: &mut BTreeMap<&'static str, J>, on: bool, ratio: f64, max: f64| {
            m.insert("thresholding", J::Bool(on));
            m.insert("dynamic_thresholding_ratio", J::Num(ratio));
            m.insert("sample_max_value", J::Num(max));
        };
        match &self.sampler {
            SamplerConfig::Ddpm(c) => {
                common(
                    &mut m,
                    c.prediction_type,
                    c.timestep_spacing,
                    c.steps_offset,
                );
                thresholding(
                    &mut m,
                    c.thresholding,
                    c.dynamic_thresholding_ratio,
                    c.sample_max_value,
                );
                m.insert("clip_sample", J::Bool(c.clip_sample));
                m.insert("clip_sample_range", J::Num(c.clip_sample_range));
                m.insert("variance_type", J::Str(c.variance_type.as_str().into()));
            }
            SamplerConfig::Ddim(c) => {
                common(
                    &mut m,
                    c.prediction_type,
                    c.timestep_spacing,
                    c.steps_offset,
                );
                thresholding(
                    &mut m,
                    c.thresholding,
                    c.dynamic_thresholding_ratio,
                    c.sample_max_value,
                );
                m.insert("clip_sample", J::Bool(c.clip_sample));
                m.insert("clip_sample_range", J::Num(c.clip_sample_range));
                m.insert("set_alpha_to_one", J::Bool(c.set_alpha_to_one));
            }
            SamplerConfig::DpmSolver(c) => {
                common(
                    &mut m,
                    c.prediction_type,
                    c.timestep_spacing,
                    c.steps_offset,
                );
                thresholding(
                    &mut m,
                    c.thresholding,
                    c.dynamic_thresholding_ratio,
                    c.sample_max_value,
                );
                m.insert("solver_order", J::Int(c.solver_order as u64));
                m.insert("algorithm_type", J::Str(c.algorithm_type.as_str().into()));
                m.insert("solver_type", J::Str(c.solver_type.as_str().into()));
                m.insert("lower_order_final", J::Bool(c.lower_order_final));
                m.insert("euler_at_final", J::Bool(c.euler_at_final));
                m.insert("use_karras_sigmas", J::Bool(c.use_karras_sigmas));
                m.insert("use_exponential_sigmas", J::Bool(c.use_exponential_sigmas));
                m.insert("use_beta_sigmas", J::Bool(false));
                m.insert("use_lu_lambdas", J::Bool(c.use_lu_lambdas));
                m.insert("use_flow_sigmas", J::Bool(false));
                m.insert("flow_shift", J::Num(1.0));
                m.insert(
                    "final_sigmas_type",
                    J::Str(c.final_sigmas_type.as_str().into()),
                );
                m.insert(
                    "lambda_min_clipped",
                    J::Num(c.lambda_min_clipped.unwrap_or(f64::NEG_INFINITY)),
                );
                m.insert(
                    "variance_type",
                    c.variance_type
                        .map_or(J::Null, |v| J::Str(v.as_str().into())),
                );
                m.insert("use_dynamic_shifting", J::Bool(false));
                m.insert("time_shift_type", J::Str("exponential".into()));
            }
            SamplerConfig::Euler(c) => {
                common(
                    &mut m,
                    c.prediction_type,
                    c.timestep_spacing,
                    c.steps_offset,
                );
                m.insert(
                    "interpolation_type",
                    J::Str(c.interpolation_type.as_str().into()),
                );
                m.insert("use_karras_sigmas", J::Bool(c.use_karras_sigmas));
                m.insert("use_exponential_sigmas", J::Bool(c.use_exponential_sigmas));
                m.insert("use_beta_sigmas", J::Bool(false));
                m.insert("sigma_min", c.sigma_min.map_or(J::Null, J::Num));
                m.insert("sigma_max", c.sigma_max.map_or(J::Null, J::Num));
                m.insert("timestep_type", J::Str("discrete".into()));
                m.insert(
                    "final_sigmas_type",
                    J::Str(c.final_sigmas_type.as_str().into()),
                );
            }
        }
        let mut out = String::from("{\n");
        let last = m.len() - 1;
        for (k, (key, value)) in m.iter().enumerate() {
            let _ = write!(out, "  {key:?}: ");
            value.write(&mut out);
            out.push_str(if k == last { "\n" } else { ",\n" });
        }
        out.push_str("}\n");
        out
    }

    /// Builds the noise schedule (from `trained_betas` if given).
    ///
    /// # Errors
    /// The errors of [`NoiseScheduleConfig::build`] and [`NoiseSchedule::from_betas`].
    pub fn build_schedule(&self) -> Result<NoiseSchedule> {
        match &self.trained_betas {
            Some(b) => NoiseSchedule::from_betas(self.schedule.clone(), b),
            None => self.schedule.build(),
        }
    }

    /// Builds the noise schedule and the sampler.
    ///
    /// # Errors
    /// As [`SchedulerConfig::build_schedule`] and [`SamplerConfig::build`].
    pub fn build(&self) -> Result<(NoiseSchedule, AnySampler)> {
        let schedule = self.build_schedule()?;
        let sampler = self.sampler.build(&schedule)?;
        Ok((schedule, sampler))
    }
}

/// A JSON value as the writer emits it.
enum J {
    Null,
    Bool(bool),
    Int(u64),
    Num(f64),
    Str(String),
    Nums(Vec<f64>),
}

fn write_num(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        // `{:?}` is the shortest text that reads back to the same f64 (with a `.0` on whole
        // numbers, as Python writes floats).
        let _ = write!(out, "{v:?}");
    }
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Num(v) => write_num(out, *v),
            J::Str(s) => out.push_str(&Value::String(s.clone()).to_string()),
            J::Nums(v) => {
                out.push_str("[\n");
                for (i, x) in v.iter().enumerate() {
                    out.push_str("    ");
                    write_num(out, *x);
                    out.push_str(if i + 1 == v.len() { "\n" } else { ",\n" });
                }
                out.push_str("  ]");
            }
        }
    }
}

/// Puts Python's bare `NaN`, `Infinity` and `-Infinity` (outside strings) in quotes, so that
/// the text parses as JSON; the readers take those strings as numbers.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some(tok) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push('"');
            out.push_str(tok);
            out.push('"');
            rest = &rest[tok.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Takes the fields of a diffusers config one by one; what is left at the end is unknown.
struct Reader {
    class: &'static str,
    map: Map<String, Value>,
}

fn type_error(field: &'static str, want: &str, got: &Value) -> Error {
    Error::InvalidConfig {
        field,
        reason: format!("expected {want}, got {got}"),
    }
}

fn number(field: &'static str, v: &Value) -> Result<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| type_error(field, "a number", v)),
        Value::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        Value::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Value::String(s) if s == "NaN" => Ok(f64::NAN),
        _ => Err(type_error(field, "a number", v)),
    }
}

impl Reader {
    fn new(mut map: Map<String, Value>) -> Result<Self> {
        let class = match map.remove("_class_name") {
            Some(Value::String(s)) => match s.as_str() {
                "DDPMScheduler" => "DDPMScheduler",
                "DDIMScheduler" => "DDIMScheduler",
                "DPMSolverMultistepScheduler" => "DPMSolverMultistepScheduler",
                "EulerDiscreteScheduler" => "EulerDiscreteScheduler",
                _ => return Err(Error::UnknownClass { class_name: s }),
            },
            Some(other) => {
                return Err(Error::UnknownClass {
                    class_name: other.to_string(),
                })
            }
            None => {
                return Err(Error::UnknownClass {
                    class_name: String::new(),
                })
            }
        };
        // Written by diffusers; no effect on the numbers.
        map.remove("_diffusers_version");
        // Fields diffusers marks as defaulted take the loading class's default.
        if let Some(v) = map.remove("_use_default_values") {
            let names = v
                .as_array()
                .ok_or_else(|| type_error("_use_default_values", "a list of field names", &v))?;
            for name in names {
                if let Some(name) = name.as_str() {
                    map.remove(name);
                }
            }
        }
        Ok(Self { class, map })
    }

    fn take(&mut self, field: &'static str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    fn bool(&mut self, field: &'static str, default: bool) -> Result<bool> {
        match self.take(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(type_error(field, "true or false", &v)),
        }
    }

    fn f64(&mut self, field: &'static str, default: f64) -> Result<f64> {
        self.take(field).map_or(Ok(default), |v| number(field, &v))
    }

    fn opt_f64(&mut self, field: &'static str) -> Result<Option<f64>> {
        self.take(field).map(|v| number(field, &v)).transpose()
    }

    fn usize(&mut self, field: &'static str, default: usize) -> Result<usize> {
        match self.take(field) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|u| u as usize)
                .ok_or_else(|| type_error(field, "a non-negative integer", &v)),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<Option<String>> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(type_error(field, "a string", &v)),
        }
    }

    fn parse<T: std::str::FromStr<Err = Error>>(
        &mut self,
        field: &'static str,
        default: T,
    ) -> Result<T> {
        self.string(field)?.map_or(Ok(default), |s| s.parse())
    }

    fn prediction_type(&mut self) -> Result<PredictionType> {
        match self.string("prediction_type")? {
            None => Ok(PredictionType::Epsilon),
            Some(s) => match s.as_str() {
                "epsilon" => Ok(PredictionType::Epsilon),
                "v_prediction" => Ok(PredictionType::VPrediction),
                "sample" => Ok(PredictionType::Sample),
                "flow_prediction" => Err(Error::Unsupported {
                    field: "prediction_type",
                    reason: "flow_prediction (flow matching) is not implemented".into(),
                }),
                other => Err(Error::InvalidConfig {
                    field: "prediction_type",
                    reason: format!(
                        "unknown value {other:?}; expected epsilon, v_prediction or sample"
                    ),
                }),
            },
        }
    }

    /// A field accepted only at the value that leaves the numbers as this crate computes them.
    fn only_default_bool(&mut self, field: &'static str, reason: &str) -> Result<()> {
        if self.bool(field, false)? {
            return Err(Error::Unsupported {
                field,
                reason: format!("true is not supported: {reason}"),
            });
        }
        Ok(())
    }

    fn only_default_str(&mut self, field: &'static str, default: &str, reason: &str) -> Result<()> {
        match self.string(field)? {
            Some(s) if s != default => Err(Error::Unsupported {
                field,
                reason: format!("{s:?} is not supported (only {default:?}): {reason}"),
            }),
            _ => Ok(()),
        }
    }

    fn read(mut self) -> Result<SchedulerConfig> {
        let d = NoiseScheduleConfig::default();
        let schedule = NoiseScheduleConfig {
            num_train_timesteps: self.usize("num_train_timesteps", d.num_train_timesteps)?,
            beta_start: self.f64("beta_start", d.beta_start)?,
            beta_end: self.f64("beta_end", d.beta_end)?,
            beta_schedule: self.parse::<BetaSchedule>("beta_schedule", d.beta_schedule)?,
            rescale_betas_zero_snr: self.bool("rescale_betas_zero_snr", false)?,
        };
        let trained_betas = match self.take("trained_betas") {
            None => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| number("trained_betas", v))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(v) => return Err(type_error("trained_betas", "a list of numbers or null", &v)),
        };
        let prediction_type = self.prediction_type()?;
        let sampler = match self.class {
            "DDPMScheduler" => {
                let d = DdpmConfig::default();
                SamplerConfig::Ddpm(DdpmConfig {
                    timestep_spacing: self.parse("timestep_spacing", TimestepSpacing::Leading)?,
                    steps_offset: self.usize("steps_offset", 0)?,
                    prediction_type,
                    // diffusers clips by default.
                    clip_sample: self.bool("clip_sample", true)?,
                    clip_sample_range: self.f64("clip_sample_range", 1.0)?,
                    thresholding: self.bool("thresholding", false)?,
                    dynamic_thresholding_ratio: self.f64("dynamic_thresholding_ratio", 0.995)?,
                    sample_max_value: self.f64("sample_max_value", 1.0)?,
                    variance_type: self.parse("variance_type", VarianceType::FixedSmall)?,
                    ..d
                })
            }
            "DDIMScheduler" => {
                let d = DdimConfig::default();
                SamplerConfig::Ddim(DdimConfig {
                    timestep_spacing: self.parse("timestep_spacing", TimestepSpacing::Leading)?,
                    steps_offset: self.usize("steps_offset", 0)?,
                    prediction_type,
                    clip_sample: self.bool("clip_sample", true)?,
                    clip_sample_range: self.f64("clip_sample_range", 1.0)?,
                    set_alpha_to_one: self.bool("set_alpha_to_one", true)?,
                    thresholding: self.bool("thresholding", false)?,
                    dynamic_thresholding_ratio: self.f64("dynamic_thresholding_ratio", 0.995)?,
                    sample_max_value: self.f64("sample_max_value", 1.0)?,
                    ..d
                })
            }
            "DPMSolverMultistepScheduler" => {
                let d = DpmSolverConfig::default();
                self.only_default_bool(
                    "use_beta_sigmas",
                    "beta-distribution sigmas need the beta quantile function (scipy)",
                )?;
                self.only_default_bool("use_flow_sigmas", "flow matching is not implemented")?;
                if self.f64("flow_shift", 1.0)? != 1.0 {
                    return Err(Error::Unsupported {
                        field: "flow_shift",
                        reason: "only 1.0: flow matching is not implemented".into(),
                    });
                }
                self.only_default_bool("use_dynamic_shifting", "flow matching is not implemented")?;
                self.only_default_str(
                    "time_shift_type",
                    "exponential",
                    "flow matching is not implemented",
                )?;
                let lambda_min_clipped = self
                    .opt_f64("lambda_min_clipped")?
                    .filter(|v| *v != f64::NEG_INFINITY);
                let variance_type = match self.string("variance_type")? {
                    None => None,
                    Some(s) => Some(s.parse::<VarianceType>()?),
                };
                SamplerConfig::DpmSolver(DpmSolverConfig {
                    timestep_spacing: self.parse("timestep_spacing", TimestepSpacing::Linspace)?,
                    steps_offset: self.usize("steps_offset", 0)?,
                    prediction_type,
                    solver_order: self.usize("solver_order", 2)?,
                    algorithm_type: self
                        .parse("algorithm_type", DpmSolverAlgorithm::DpmSolverPlusPlus)?,
                    solver_type: self.parse("solver_type", DpmSolverType::Midpoint)?,
                    lower_order_final: self.bool("lower_order_final", true)?,
                    euler_at_final: self.bool("euler_at_final", false)?,
                    use_karras_sigmas: self.bool("use_karras_sigmas", false)?,
                    use_exponential_sigmas: self.bool("use_exponential_sigmas", false)?,
                    use_lu_lambdas: self.bool("use_lu_lambdas", false)?,
                    final_sigmas_type: self.parse("final_sigmas_type", FinalSigmas::Zero)?,
                    lambda_min_clipped,
                    variance_type,
                    thresholding: self.bool("thresholding", false)?,
                    dynamic_thresholding_ratio: self.f64("dynamic_thresholding_ratio", 0.995)?,
                    sample_max_value: self.f64("sample_max_value", 1.0)?,
                    ..d
                })
            }
            _ => {
                let d = EulerConfig::default();
                self.only_default_bool(
                    "use_beta_sigmas",
                    "beta-distribution sigmas need the beta quantile function (scipy)",
                )?;
                self.only_default_str(
                    "timestep_type",
                    "discrete",
                    "continuous timesteps (0.25 log sigma) are not training timesteps",
                )?;
                SamplerConfig::Euler(EulerConfig {
                    timestep_spacing: self.parse("timestep_spacing", TimestepSpacing::Linspace)?,
                    steps_offset: self.usize("steps_offset", 0)?,
                    prediction_type,
                    interpolation_type: self
                        .parse("interpolation_type", SigmaInterpolation::Linear)?,
                    use_karras_sigmas: self.bool("use_karras_sigmas", false)?,
                    use_exponential_sigmas: self.bool("use_exponential_sigmas", false)?,
                    sigma_min: self.opt_f64("sigma_min")?,
                    sigma_max: self.opt_f64("sigma_max")?,
                    final_sigmas_type: self.parse("final_sigmas_type", FinalSigmas::Zero)?,
                    ..d
                })
            }
        };
        if let Some(field) = self.map.keys().next() {
            return Err(Error::UnknownField {
                class: self.class,
                field: field.clone(),
            });
        }
        Ok(SchedulerConfig {
            schedule,
            trained_betas,
            sampler,
        })
    }
}

/// Any of the four samplers as one `Clone`-able value: what [`SchedulerConfig::build`] and
/// [`SamplerConfig::build`] return.
#[derive(Debug, Clone)]
pub enum AnySampler {
    /// DDIM.
    Ddim(DdimSampler),
    /// DDPM.
    Ddpm(DdpmSampler),
    /// DPM-Solver(++).
    DpmSolver(DpmSolverSampler),
    /// Euler.
    Euler(EulerSampler),
}

impl AnySampler {
    fn inner(&self) -> &dyn Sampler {
        match self {
            Self::Ddim(s) => s,
            Self::Ddpm(s) => s,
            Self::DpmSolver(s) => s,
            Self::Euler(s) => s,
        }
    }

    fn inner_mut(&mut self) -> &mut dyn Sampler {
        match self {
            Self::Ddim(s) => s,
            Self::Ddpm(s) => s,
            Self::DpmSolver(s) => s,
            Self::Euler(s) => s,
        }
    }
}

impl Sampler for AnySampler {
    fn plan(&self) -> &Plan {
        self.inner().plan()
    }

    fn step(
        &mut self,
        model_output: &Tensor,
        t: &Tensor,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        self.inner_mut().step(model_output, t, sample, noise)
    }

    fn add_noise(&self, x0: &Tensor, noise: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.inner().add_noise(x0, noise, t)
    }

    fn scale_model_input(&self, sample: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.inner().scale_model_input(sample, t)
    }

    fn needs_noise(&self) -> bool {
        self.inner().needs_noise()
    }

    fn reset(&mut self) {
        self.inner_mut().reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_tokens_are_quoted_outside_strings() {
        let t = quote_non_finite(
            r#"{"a": -Infinity, "b": "NaN -Infinity \" Infinity", "c": [NaN, Infinity]}"#,
        );
        assert_eq!(
            t,
            r#"{"a": "-Infinity", "b": "NaN -Infinity \" Infinity", "c": ["NaN", "Infinity"]}"#
        );
    }

    #[test]
    fn missing_fields_take_diffusers_defaults() {
        let c =
            SchedulerConfig::from_diffusers_json(r#"{"_class_name": "DDIMScheduler"}"#).unwrap();
        let SamplerConfig::Ddim(d) = &c.sampler else {
            panic!("{c:?}")
        };
        assert!(d.clip_sample, "diffusers clips by default");
        assert_eq!(c.schedule, NoiseScheduleConfig::default());
    }

    #[test]
    fn writes_python_style_numbers() {
        let mut s = String::new();
        for v in [1.0, 0.0001, 1e-5, f64::NEG_INFINITY, 0.995] {
            write_num(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "1.0 0.0001 1e-5 -Infinity 0.995 ");
    }
}
