//! The scorer trait and what it returns.

use candle_core::Tensor;

use crate::{Error, Result};

/// What a [`Scorer`] gives for a batch: one anomaly score per sample and, where the data has
/// positions (pixels, time steps), an anomaly map.
///
/// Higher means more anomalous.
///
/// # Shapes
/// - `scores`: one value per sample, in batch order.
/// - `map`: `[batch, height, width]` for images and scalograms (`[batch, channel, height,
///   width]` input), `[batch, length]` for series windows (`[batch, channel, length]` input),
///   `None` for tables (`[batch, features]`) and for scorers without positions. The map has the
///   input's spatial size.
#[derive(Debug, Clone)]
pub struct ScoreOutput {
    /// The anomaly score of each sample.
    pub scores: Vec<f32>,
    /// The anomaly map, `[batch, *spatial]`, or `None`.
    pub map: Option<Tensor>,
}

impl ScoreOutput {
    /// The number of samples scored.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether no sample was scored.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Joins the outputs of several batches, in order (scores appended, maps concatenated
    /// along the batch axis).
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if some outputs have maps and others do not, or the
    /// maps' spatial sizes differ.
    pub fn concat(parts: &[ScoreOutput]) -> Result<ScoreOutput> {
        let scores = parts
            .iter()
            .flat_map(|p| p.scores.iter().copied())
            .collect();
        let with_maps = parts.iter().filter(|p| p.map.is_some()).count();
        let map = if with_maps == 0 {
            None
        } else if with_maps == parts.len() {
            let maps: Vec<&Tensor> = parts.iter().filter_map(|p| p.map.as_ref()).collect();
            let first = maps[0].dims()[1..].to_vec();
            if let Some(bad) = maps.iter().find(|m| m.dims()[1..] != first[..]) {
                return Err(Error::shape(
                    "ScoreOutput::concat: map",
                    format!("[batch, {first:?}] like the first part"),
                    bad.dims(),
                ));
            }
            Some(Tensor::cat(&maps, 0)?)
        } else {
            return Err(Error::shape(
                "ScoreOutput::concat",
                "every part with a map or none",
                &[with_maps, parts.len()],
            ));
        };
        Ok(ScoreOutput { scores, map })
    }
}

/// Scores a batch of samples: one score per sample and, where the data has positions, an
/// anomaly map (see [`ScoreOutput`]).
///
/// Fitting (normalisation statistics, DTE training) is never hidden in `score`: it happens in
/// the `fit` functions of the concrete scorers, which return a ready scorer.
///
/// # Shapes
/// `x`: `[batch, channel, height, width]` (images, scalograms), `[batch, channel, length]`
/// (series windows) or `[batch, features]` (tables), as the scorer accepts.
pub trait Scorer {
    /// Scores the batch `x`.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] for an empty batch or a shape the scorer cannot
    /// take; any error of the underlying models.
    fn score(&self, x: &Tensor) -> Result<ScoreOutput>;

    /// Scores `x` in batches of at most `batch_size` samples along the first axis and joins
    /// the outputs in order. Scorers that draw noise draw it per batch, so the scores depend
    /// on the batch size: keep it fixed to reproduce them.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `batch_size`) if `batch_size` is 0;
    /// [`dmad_core::Error::ShapeMismatch`] for a 0-dimensional or empty `x`; as
    /// [`Scorer::score`].
    fn score_batched(&self, x: &Tensor, batch_size: usize) -> Result<ScoreOutput> {
        let n = batches(x, batch_size, "Scorer::score_batched: x")?;
        let parts = n
            .into_iter()
            .map(|(s, l)| self.score(&x.narrow(0, s, l)?))
            .collect::<Result<Vec<_>>>()?;
        ScoreOutput::concat(&parts)
    }
}

/// The `(start, len)` batches of at most `batch_size` samples of `x`'s first axis.
pub(crate) fn batches(
    x: &Tensor,
    batch_size: usize,
    context: &'static str,
) -> Result<Vec<(usize, usize)>> {
    if batch_size == 0 {
        return Err(Error::config("batch_size", "must be at least 1"));
    }
    let n = match x.dims().first() {
        Some(&n) if n > 0 => n,
        _ => {
            return Err(Error::shape(
                context,
                "a non-empty batch [batch, ...]",
                x.dims(),
            ))
        }
    };
    Ok((0..n)
        .step_by(batch_size)
        .map(|s| (s, batch_size.min(n - s)))
        .collect())
}

impl<S: Scorer + ?Sized> Scorer for &S {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        (**self).score(x)
    }
}

impl<S: Scorer + ?Sized> Scorer for Box<S> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        (**self).score(x)
    }
}

impl<S: Scorer + ?Sized> Scorer for std::sync::Arc<S> {
    fn score(&self, x: &Tensor) -> Result<ScoreOutput> {
        (**self).score(x)
    }
}

/// Checks that `x` is a non-empty float batch of rank `ranks`, returning its batch size.
pub(crate) fn check_batch(x: &Tensor, context: &'static str, ranks: &[usize]) -> Result<usize> {
    let dims = x.dims();
    let expected = || {
        let names: Vec<&str> = ranks
            .iter()
            .map(|r| match r {
                2 => "[batch, features]",
                3 => "[batch, channel, length]",
                4 => "[batch, channel, height, width]",
                _ => "[batch, ...]",
            })
            .collect();
        format!(
            "a non-empty float batch {} with no empty axis",
            names.join(" or ")
        )
    };
    if !ranks.contains(&dims.len()) || dims.contains(&0) || !x.dtype().is_float() {
        return Err(Error::shape(context, expected(), dims));
    }
    Ok(dims[0])
}

/// An [`dmad_core::Error::InvalidInput`] without a file, wrapped in [`Error::Core`].
pub(crate) fn invalid_input(reason: impl Into<String>) -> Error {
    Error::Core(dmad_core::Error::InvalidInput {
        path: None,
        line: None,
        reason: reason.into(),
    })
}

/// Checks that every value is finite.
pub(crate) fn check_finite(values: &[f32], what: &str) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(invalid_input(format!(
            "{what}: value {i} is {} (must be finite)",
            values[i]
        )));
    }
    Ok(())
}
