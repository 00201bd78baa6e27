//! Repeats one transform many times, for CPU-time measurements that a busy machine does not
//! distort (`benches/peers/pywt_peer.py --cpu` runs it and PyWavelets under `getrusage`):
//! `cargo run --release -p dmad-wavelets --example timing -- <case> <reps>`, case one of
//! none (inputs only), dwt, wavedec, wavedec2, cwt, cwt_planned, tensor, tensor_per.
//! Inputs have the benches' sizes: 2^20 samples, 1024x1024, 16000 x 64 scales, [16,64,64,64].
use dmad_wavelets::{
    cwt, dwt, wavedec, wavedec2, ContinuousWavelet, CwtConfig, CwtMethod, Mode, NdArray, Wavelet,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("dwt");
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let x: Vec<f64> = (0..1 << 20)
        .map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0)
        .collect();
    let db4 = Wavelet::new("db4")?;
    let db2 = Wavelet::new("db2")?;
    let img = NdArray::new(vec![1024, 1024], x.clone())?;
    let scales: Vec<f64> = (1..=64).map(f64::from).collect();
    let morl = ContinuousWavelet::new("morl")?;
    let cfg = CwtConfig {
        method: CwtMethod::Fft,
        ..CwtConfig::default()
    };
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let t32: Vec<f32> = (0..16 * 64 * 64 * 64)
        .map(|i| x[i % x.len()] as f32)
        .collect();
    let t = candle_core::Tensor::from_vec(t32, (16, 64, 64, 64), &candle_core::Device::Cpu)?;
    let op = dmad_wavelets::tensor::Dwt2d::new(&db2, Mode::Symmetric);
    let op_per = dmad_wavelets::tensor::Dwt2d::new(&db2, Mode::Periodization);
    let plan = dmad_wavelets::CwtPlanner::new().plan_cwt(&morl, &scales, 16000, &cfg)?;
    for _ in 0..reps {
        match case {
            "dwt" => drop(dwt(&x, &db4, Mode::Symmetric)?),
            "wavedec" => drop(wavedec(&x, &db4, Mode::Symmetric, None)?),
            "wavedec2" => drop(wavedec2(&img, &db2, Mode::Symmetric, Some(3), [0, 1])?),
            "cwt" => drop(cwt(&x[..16000], &scales, &morl, &cfg)?),
            "cwt_planned" => drop(plan.process(&x[..16000])?),
            "tensor" => drop(op.forward(&t)?),
            "tensor_per" => drop(op_per.forward(&t)?),
            "none" => {}
            _ => return Err("unknown case".into()),
        }
    }
    Ok(())
}
