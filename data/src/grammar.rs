//! A small probabilistic context-free grammar engine: build, sample, compute exact expectations
//! (entropy, expected length), check that it is LL(1), and parse.
//!
//! A grammar has nonterminals (names starting with an upper-case letter in [`GrammarBuilder::rule`])
//! and terminals (words, or one of the punctuation marks `.` `,` `?` `!`). Each nonterminal has
//! rules with probabilities (weights normalised per nonterminal). A derivation is the sequence
//! of rules used in leftmost order; a sample is drawn by expanding the start symbol depth-first,
//! left to right.
//!
//! **Exact expectations.** For any per-expansion quantity `c(X)` (the entropy of the rule choice
//! at X, `−Σ p ln p`, or the cost of the terminals a rule emits directly), the expected total
//! over a derivation from X satisfies the linear system
//!
//! ```text
//! E(X) = c(X) + Σ_r p(r) Σ_{Y in rhs(r)} E(Y)        i.e.  (I − M) E = c
//! ```
//!
//! with `M[X][Y] = Σ_r p(r)·(occurrences of Y in r)`. It is solved by Gaussian elimination
//! ([`Grammar::expectation`]). The grammar terminates with probability one and has finite
//! expected size iff the spectral radius of M is below 1; for a non-negative M this holds iff
//! `(I − M) x = 1` has a positive solution (Collatz–Wielandt), which [`Grammar::expectation`]
//! checks (the expected number of expansions) before trusting any answer.
//!
//! The entropy of the derivation, `H = E[−ln P(derivation)]`, is the expectation with
//! `c(X) = −Σ_r p(r) ln p(r)`. When the grammar is unambiguous (every terminal string has one
//! derivation), the map derivation → string is injective and H is also the entropy of the string.
//!
//! **Unambiguity.** [`Grammar::ll1`] (in [`crate::ll1`]) computes FIRST and FOLLOW sets and checks that at every
//! nonterminal the rules' predict sets are pairwise disjoint (the LL(1) condition). An LL(1)
//! grammar is unambiguous: the predictive parser ([`crate::ll1::Ll1Table::parse`]) never has a choice, so a
//! terminal string has at most one leftmost derivation.

use crate::error::{DataError, Result};
use std::collections::HashMap;
use std::ops::Range;
use tensor::Rng;

/// A right-hand-side symbol: a terminal id or a nonterminal id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Symbol {
    Terminal(u32),
    Nonterminal(u32),
}

/// One rule `lhs → rhs` with its (normalised) probability.
#[derive(Clone, Debug)]
pub struct Rule {
    pub lhs: u32,
    pub prob: f64,
    pub rhs: Vec<Symbol>,
}

/// Collects rules; [`GrammarBuilder::build`] checks and normalises them.
#[derive(Default, Debug)]
pub struct GrammarBuilder {
    nonterminals: Vec<String>,
    nt_ids: HashMap<String, u32>,
    terminals: Vec<String>,
    t_ids: HashMap<String, u32>,
    rules: Vec<(u32, f64, Vec<Symbol>)>,
}

/// Whether `s` is one of the punctuation terminals (rendered without a leading space).
pub fn is_punctuation(s: &str) -> bool {
    matches!(s, "." | "," | "?" | "!")
}

impl GrammarBuilder {
    pub fn new() -> GrammarBuilder {
        GrammarBuilder::default()
    }

    fn nonterminal(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.nt_ids.get(name) {
            return id;
        }
        let id = self.nonterminals.len() as u32;
        self.nonterminals.push(name.to_string());
        self.nt_ids.insert(name.to_string(), id);
        id
    }

    fn terminal(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.t_ids.get(text) {
            return id;
        }
        let id = self.terminals.len() as u32;
        self.terminals.push(text.to_string());
        self.t_ids.insert(text.to_string(), id);
        id
    }

    /// Adds `lhs → rhs` with weight `weight`. `rhs` is a space-separated list: names starting
    /// with an upper-case ASCII letter are nonterminals, anything else is a terminal; an empty
    /// string is the empty rule ε.
    pub fn rule(&mut self, lhs: &str, weight: f64, rhs: &str) -> &mut Self {
        let l = self.nonterminal(lhs);
        let syms = rhs
            .split_whitespace()
            .map(|s| {
                if s.starts_with(|c: char| c.is_ascii_uppercase()) {
                    Symbol::Nonterminal(self.nonterminal(s))
                } else {
                    Symbol::Terminal(self.terminal(s))
                }
            })
            .collect();
        self.rules.push((l, weight, syms));
        self
    }

    /// Adds a lexical category: `lhs → w` for every word of `words` (terminals, whatever their
    /// case), word `i` with Zipf weight `1 / (i + 1)^zipf` (0 gives a uniform choice).
    pub fn words(&mut self, lhs: &str, words: &[&str], zipf: f64) -> &mut Self {
        let l = self.nonterminal(lhs);
        for (i, w) in words.iter().enumerate() {
            let t = self.terminal(w);
            let weight = 1.0 / ((i + 1) as f64).powf(zipf);
            self.rules.push((l, weight, vec![Symbol::Terminal(t)]));
        }
        self
    }

    /// Checks (every nonterminal has a rule; weights positive and finite; every terminal a
    /// non-empty word of ASCII letters or a punctuation mark) and normalises the weights.
    /// `start` is the start symbol.
    pub fn build(self, start: &str) -> Result<Grammar> {
        let bad = |m: String| DataError::argument("GrammarBuilder::build", m);
        let start = *self
            .nt_ids
            .get(start)
            .ok_or_else(|| bad(format!("start symbol {start} has no rule")))?;
        for t in &self.terminals {
            let word = !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphabetic());
            if !word && !is_punctuation(t) {
                return Err(bad(format!("terminal {t:?} is neither a word nor . , ? !")));
            }
        }
        let n = self.nonterminals.len();
        let mut rules = self.rules;
        rules.sort_by_key(|r| r.0); // stable: keeps each nonterminal's rules in insertion order
        let mut by_lhs = vec![0..0; n];
        let mut total = vec![0.0; n];
        for (i, (l, w, _)) in rules.iter().enumerate() {
            if !(w.is_finite() && *w > 0.0) {
                return Err(bad(format!(
                    "rule of {} has weight {w}",
                    self.nonterminals[*l as usize]
                )));
            }
            let r = &mut by_lhs[*l as usize];
            if r.start == r.end {
                *r = i..i;
            }
            r.end = i + 1;
            total[*l as usize] += w;
        }
        if let Some(x) = (0..n).find(|&x| by_lhs[x].start == by_lhs[x].end) {
            return Err(bad(format!(
                "nonterminal {} is used but has no rule",
                self.nonterminals[x]
            )));
        }
        let rules: Vec<Rule> = rules
            .into_iter()
            .map(|(lhs, w, rhs)| Rule {
                lhs,
                prob: w / total[lhs as usize],
                rhs,
            })
            .collect();
        let cdf = by_lhs
            .iter()
            .map(|r| {
                let mut acc = 0.0;
                rules[r.clone()]
                    .iter()
                    .map(|rule| {
                        acc += rule.prob;
                        acc
                    })
                    .collect()
            })
            .collect();
        let ln_prob = rules.iter().map(|r| r.prob.ln()).collect();
        Ok(Grammar {
            nonterminals: self.nonterminals,
            terminals: self.terminals,
            t_ids: self.t_ids,
            rules,
            ln_prob,
            by_lhs,
            cdf,
            start: start as usize,
        })
    }
}

/// A checked probabilistic grammar (see the module documentation).
#[derive(Clone, Debug)]
pub struct Grammar {
    pub(crate) nonterminals: Vec<String>,
    pub(crate) terminals: Vec<String>,
    t_ids: HashMap<String, u32>,
    pub(crate) rules: Vec<Rule>,
    ln_prob: Vec<f64>,
    pub(crate) by_lhs: Vec<Range<usize>>,
    cdf: Vec<Vec<f64>>,
    pub(crate) start: usize,
}

impl Grammar {
    /// The nonterminal names, indexed by id.
    pub fn nonterminals(&self) -> &[String] {
        &self.nonterminals
    }
    /// The terminal texts (words without spaces, punctuation), indexed by id.
    pub fn terminals(&self) -> &[String] {
        &self.terminals
    }
    /// The id of the terminal `text`, if it is one.
    pub fn terminal_id(&self, text: &str) -> Option<u32> {
        self.t_ids.get(text).copied()
    }
    /// The id of the nonterminal `name`, if it is one.
    pub fn nonterminal_id(&self, name: &str) -> Option<u32> {
        self.nonterminals
            .iter()
            .position(|n| n == name)
            .map(|i| i as u32)
    }
    /// All rules; a derivation is a list of indices into this slice.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
    /// The indices of the rules of nonterminal `nt`.
    pub fn rules_of(&self, nt: u32) -> Range<usize> {
        self.by_lhs[nt as usize].clone()
    }
    /// The start symbol's id.
    pub fn start(&self) -> u32 {
        self.start as u32
    }

    /// Samples a derivation from the start symbol: appends its terminals to `out` and, if given,
    /// its rules (leftmost order) to `derivation`. Returns `ln P(derivation)`.
    pub fn sample(
        &self,
        rng: &mut Rng,
        out: &mut Vec<u32>,
        mut derivation: Option<&mut Vec<u32>>,
    ) -> f64 {
        let mut stack = vec![Symbol::Nonterminal(self.start as u32)];
        let mut lp = 0.0;
        while let Some(sym) = stack.pop() {
            match sym {
                Symbol::Terminal(t) => out.push(t),
                Symbol::Nonterminal(x) => {
                    let range = self.by_lhs[x as usize].clone();
                    let k = if range.len() == 1 {
                        0
                    } else {
                        let u = rng.uniform();
                        self.cdf[x as usize]
                            .partition_point(|&c| c <= u)
                            .min(range.len() - 1)
                    };
                    let r = range.start + k;
                    lp += self.ln_prob[r];
                    if let Some(d) = derivation.as_deref_mut() {
                        d.push(r as u32);
                    }
                    stack.extend(self.rules[r].rhs.iter().rev());
                }
            }
        }
        lp
    }

    /// `ln P` of a derivation (a list of rule indices).
    pub fn log_prob(&self, derivation: &[u32]) -> f64 {
        derivation.iter().map(|&r| self.ln_prob[r as usize]).sum()
    }

    /// Solves `E = c + M E` (see the module documentation) for the per-expansion quantity
    /// `local[X]`, returning `E(X)` for every nonterminal. Error: the grammar is not
    /// subcritical (its expected derivation size is infinite).
    pub fn expectation(&self, local: &[f64]) -> Result<Vec<f64>> {
        let n = self.nonterminals.len();
        let mut a = vec![vec![0.0f64; n]; n]; // I − M
        for (x, row) in a.iter_mut().enumerate() {
            row[x] = 1.0;
            for r in &self.rules[self.by_lhs[x].clone()] {
                for s in &r.rhs {
                    if let Symbol::Nonterminal(y) = s {
                        row[*y as usize] -= r.prob;
                    }
                }
            }
        }
        let bad = || {
            DataError::argument(
                "Grammar::expectation",
                "the grammar is not subcritical: its expected derivation size is infinite \
                 (lower the recursion probabilities)",
            )
        };
        let sizes = solve(a.clone(), vec![1.0; n]).ok_or_else(bad)?;
        if sizes.iter().any(|&s| !(s.is_finite() && s >= 1.0 - 1e-9)) {
            return Err(bad());
        }
        solve(a, local.to_vec()).ok_or_else(bad)
    }

    /// Exact entropy (nats) of a derivation from each nonterminal.
    pub fn entropy_nats(&self) -> Result<Vec<f64>> {
        let local: Vec<f64> = self
            .by_lhs
            .iter()
            .map(|r| {
                -self.rules[r.clone()]
                    .iter()
                    .map(|x| x.prob * x.prob.ln())
                    .sum::<f64>()
            })
            .collect();
        self.expectation(&local)
    }

    /// Exact expected total `cost` of the terminals of a derivation from each nonterminal
    /// (`cost(t)` for terminal id t; e.g. its rendered length in bytes).
    pub fn expected_cost(&self, cost: impl Fn(u32) -> f64) -> Result<Vec<f64>> {
        let local: Vec<f64> = self
            .by_lhs
            .iter()
            .map(|r| {
                self.rules[r.clone()]
                    .iter()
                    .map(|x| {
                        let direct: f64 = x
                            .rhs
                            .iter()
                            .map(|s| match s {
                                Symbol::Terminal(t) => cost(*t),
                                Symbol::Nonterminal(_) => 0.0,
                            })
                            .sum();
                        x.prob * direct
                    })
                    .sum()
            })
            .collect();
        self.expectation(&local)
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        let (top, bottom) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (i, row) in bottom.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            if f != 0.0 {
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= f * p;
                }
                b[col + 1 + i] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_grammar_matches_closed_forms() {
        // A → x A (p) | ε: the word count is geometric, E = p/(1−p), H = H_b(p)/(1−p).
        let p: f64 = 0.3;
        let mut b = GrammarBuilder::new();
        b.rule("A", p, "x A").rule("A", 1.0 - p, "");
        let g = b.build("A").unwrap();
        let e = g.expected_cost(|_| 1.0).unwrap()[0];
        let h = g.entropy_nats().unwrap()[0];
        let hb = -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
        assert!((e - p / (1.0 - p)).abs() < 1e-12, "{e}");
        assert!((h - hb / (1.0 - p)).abs() < 1e-12, "{h}");
        assert!(g.ll1().is_ok());
    }

    #[test]
    fn supercritical_grammar_is_refused() {
        let mut b = GrammarBuilder::new();
        b.rule("A", 0.6, "A A").rule("A", 0.4, "x");
        assert!(b.build("A").unwrap().entropy_nats().is_err());
    }

    #[test]
    fn ambiguous_grammar_is_not_ll1() {
        // "x" has two derivations: S → A → x and S → B → x.
        let mut b = GrammarBuilder::new();
        b.rule("S", 0.5, "A")
            .rule("S", 0.5, "B")
            .rule("A", 1.0, "x")
            .rule("B", 1.0, "x");
        let err = b.build("S").unwrap().ll1().unwrap_err().to_string();
        assert!(
            err.contains("not LL(1)") && err.contains("S on \"x\""),
            "{err}"
        );
    }

    #[test]
    fn finite_grammar_matches_enumeration() {
        // S → A B; A → a (0.2) | b (0.8); B → c d (0.5) | ε (0.5).
        let mut b = GrammarBuilder::new();
        b.rule("S", 1.0, "A B")
            .rule("A", 0.2, "a")
            .rule("A", 0.8, "b");
        b.rule("B", 0.5, "c d").rule("B", 0.5, "");
        let g = b.build("S").unwrap();
        let probs = [0.1f64, 0.1, 0.4, 0.4];
        let h: f64 = -probs.iter().map(|p| p * p.ln()).sum::<f64>();
        let len = 0.1 * 3.0 + 0.1 + 0.4 * 3.0 + 0.4;
        assert!((g.entropy_nats().unwrap()[0] - h).abs() < 1e-12);
        assert!((g.expected_cost(|_| 1.0).unwrap()[0] - len).abs() < 1e-12);
        let t = g.ll1().unwrap();
        let mut rng = Rng::seed(0);
        for _ in 0..50 {
            let (mut out, mut d) = (Vec::new(), Vec::new());
            let lp = g.sample(&mut rng, &mut out, Some(&mut d));
            assert_eq!(t.parse(&g, &out).unwrap(), d);
            assert!((g.log_prob(&d) - lp).abs() < 1e-12);
        }
    }
}
