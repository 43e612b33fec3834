//! Optimisation: an AdamW whose state we own (so it can be checkpointed),
//! learning-rate schedules and global-norm gradient clipping.

mod schedule;

pub use schedule::{LrSchedule, OFFICIAL_FLAT_SHARE};

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// AdamW hyper-parameters (the learning rate comes from the schedule).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator fuzz.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// The official Restormer values: betas (0.9, 0.999), eps 1e-8, weight decay 1e-4.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-4,
        }
    }
}

/// AdamW with decoupled weight decay and bias correction, updating the
/// variables of a [`VarMap`] in name order. Per update, as PyTorch does it:
/// `p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;`
/// `p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)`.
/// A variable without a gradient in a step is left alone (no decay either).
pub struct AdamW {
    cfg: AdamWConfig,
    names: Vec<String>,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
}

impl AdamW {
    /// An optimiser with zero moments for every variable in `varmap`.
    pub fn new(varmap: &VarMap, cfg: AdamWConfig) -> Result<Self> {
        let mut named: Vec<(String, Var)> = {
            let data = varmap
                .data()
                .lock()
                .map_err(|_| Error::Config("variable map lock is poisoned".into()))?;
            data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = Vec::with_capacity(named.len());
        let mut v = Vec::with_capacity(named.len());
        for (_, var) in &named {
            m.push(var.as_tensor().zeros_like()?);
            v.push(var.as_tensor().zeros_like()?);
        }
        let (names, vars) = named.into_iter().unzip();
        Ok(Self {
            cfg,
            names,
            vars,
            m,
            v,
            step: 0,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> AdamWConfig {
        self.cfg
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The optimised variables, in name order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let c = self.cfg;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        for i in 0..self.vars.len() {
            let var = &self.vars[i];
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            // Everything here is arithmetic on plain values: the gradient, the
            // moments and the weights are detached, so no tensor the optimiser
            // keeps can hold a backprop op. A moment computed from a tracked
            // gradient would chain each step's graph (and through it every
            // activation of that step) to the next one, growing memory without
            // bound.
            let g = g.to_dtype(DType::F32)?.detach();
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?.detach();
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?.detach();
            let denom = (v.sqrt()? / bc2_sqrt)?.affine(1.0, c.eps)?;
            let decayed = (var.as_tensor().detach() * (1.0 - lr * c.weight_decay))?;
            let update = ((&m / &denom)? * (lr / bc1))?;
            var.set(&(decayed - update)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The state as named tensors: `m.<var>`, `v.<var>` and `step` (`[1]`, i64).
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, name) in self.names.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        let dev = self
            .vars
            .first()
            .map(|v| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        out.insert("step".into(), Tensor::new(&[self.step as i64], &dev)?);
        Ok(out)
    }

    /// Restores state produced by [`AdamW::state_tensors`]; every variable
    /// must have moments of its own shape.
    pub fn load_state_tensors(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let get = |key: &str| {
            state
                .get(key)
                .ok_or_else(|| Error::Checkpoint(format!("optimiser state lacks {key}")))
        };
        let step = get("step")?.to_dtype(DType::I64)?.to_vec1::<i64>()?;
        let step = *step
            .first()
            .ok_or_else(|| Error::Checkpoint("optimiser step is empty".into()))?;
        for (i, name) in self.names.iter().enumerate() {
            let shape = self.vars[i].shape().clone();
            let dev = self.vars[i].device().clone();
            for (slot, key) in [
                (&mut self.m[i], format!("m.{name}")),
                (&mut self.v[i], format!("v.{name}")),
            ] {
                let t = get(&key)?;
                if t.shape() != &shape {
                    return Err(Error::Checkpoint(format!(
                        "{key} has shape {:?}, variable has {:?}",
                        t.dims(),
                        shape.dims()
                    )));
                }
                *slot = t.to_dtype(DType::F32)?.to_device(&dev)?;
            }
        }
        self.step = u64::try_from(step)
            .map_err(|_| Error::Checkpoint(format!("negative optimiser step {step}")))?;
        Ok(())
    }

    /// Writes the state to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.state_tensors()?, path)?;
        Ok(())
    }

    /// Reads the state from a safetensors file written by [`AdamW::save`].
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let dev = self
            .vars
            .first()
            .map(|v| v.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let state = candle_core::safetensors::load(path, &dev)?;
        self.load_state_tensors(&state)
    }
}

/// Scales all gradients of `vars` so their global L2 norm is at most
/// `max_norm` (PyTorch's `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)`
/// when below 1). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut sum_sq = 0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            let s = g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
            sum_sq += s;
        }
    }
    let norm = sum_sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for var in vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                let scaled = (g * coef)?;
                grads.insert(var.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::Init;

    fn map_with(values: &[f32]) -> (VarMap, Var) {
        let vm = VarMap::new();
        vm.get(
            values.len(),
            "w",
            Init::Const(0.0),
            DType::F32,
            &Device::Cpu,
        )
        .unwrap();
        let var = vm.all_vars().remove(0);
        var.set(&Tensor::new(values, &Device::Cpu).unwrap())
            .unwrap();
        (vm, var)
    }

    /// loss = sum(w * c) has gradient c.
    fn grads_for(var: &Var, c: &[f32]) -> GradStore {
        let c = Tensor::new(c, &Device::Cpu).unwrap();
        (var.as_tensor() * c)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    #[test]
    fn two_adamw_steps_match_hand_computation() {
        let (vm, var) = map_with(&[1.0, -2.0]);
        let cfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(&vm, cfg).unwrap();
        let g = [0.5f64, -0.25];
        let lr = 0.01;
        let mut p = [1.0f64, -2.0];
        let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
        for t in 1..=2 {
            opt.step(&grads_for(&var, &[0.5, -0.25]), lr).unwrap();
            for i in 0..2 {
                p[i] *= 1.0 - lr * cfg.weight_decay;
                m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g[i];
                v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g[i] * g[i];
                let mh = m[i] / (1.0 - cfg.beta1.powi(t));
                let vh = v[i] / (1.0 - cfg.beta2.powi(t));
                p[i] -= lr * mh / (vh.sqrt() + cfg.eps);
            }
        }
        let got = var.as_tensor().to_vec1::<f32>().unwrap();
        for i in 0..2 {
            assert!((f64::from(got[i]) - p[i]).abs() < 1e-6, "{got:?} vs {p:?}");
        }
        assert_eq!(opt.steps(), 2);
    }

    #[test]
    fn optimiser_state_holds_no_graph_after_a_step() {
        // loss = sum(w * w): the gradient 2w is computed from the variable
        // itself, so it carries a backprop op. State derived from it without
        // detaching would keep that graph (and every activation) alive.
        let (vm, var) = map_with(&[0.5, -1.5, 2.0]);
        let mut opt = AdamW::new(&vm, AdamWConfig::default()).unwrap();
        for _ in 0..3 {
            let grads = var
                .as_tensor()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert!(
                grads.get(var.as_tensor()).unwrap().track_op(),
                "the test gradient must carry an op for this test to mean anything"
            );
            opt.step(&grads, 1e-2).unwrap();
        }
        for (name, t) in opt.state_tensors().unwrap() {
            assert!(
                !t.track_op(),
                "optimiser state {name} keeps a backprop graph"
            );
        }
        assert!(!opt.m[0].track_op() && !opt.v[0].track_op());
    }

    #[test]
    fn state_round_trips_through_safetensors() {
        let (vm, var) = map_with(&[0.3, 0.7, -0.1]);
        let mut opt = AdamW::new(&vm, AdamWConfig::default()).unwrap();
        opt.step(&grads_for(&var, &[1.0, 2.0, 3.0]), 1e-3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opt.safetensors");
        opt.save(&path).unwrap();
        let mut fresh = AdamW::new(&vm, AdamWConfig::default()).unwrap();
        fresh.load(&path).unwrap();
        assert_eq!(fresh.steps(), 1);
        assert_eq!(
            fresh.m[0].to_vec1::<f32>().unwrap(),
            opt.m[0].to_vec1::<f32>().unwrap()
        );
        assert_eq!(
            fresh.v[0].to_vec1::<f32>().unwrap(),
            opt.v[0].to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn clipping_scales_to_max_norm() {
        let (_vm, var) = map_with(&[0.0, 0.0]);
        let mut grads = grads_for(&var, &[3.0, 4.0]);
        let norm = clip_grad_norm(&mut grads, std::slice::from_ref(&var), 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-9);
        let g = grads
            .get(var.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let scale = 1.0 / (5.0 + 1e-6);
        assert!((f64::from(g[0]) - 3.0 * scale).abs() < 1e-6);
        assert!((f64::from(g[1]) - 4.0 * scale).abs() < 1e-6);
        // Below the limit nothing changes.
        let mut grads = grads_for(&var, &[0.3, 0.4]);
        clip_grad_norm(&mut grads, std::slice::from_ref(&var), 1.0).unwrap();
        assert_eq!(
            grads
                .get(var.as_tensor())
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![0.3, 0.4]
        );
    }
}
