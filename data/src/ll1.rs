//! The LL(1) check and the predictive parser of a [`Grammar`].
//!
//! [`Grammar::ll1`] computes the nullable nonterminals and the FIRST and FOLLOW sets (fixed
//! points over the rules), then the predict set of every rule: `FIRST(rhs)`, plus `FOLLOW(lhs)`
//! when `rhs` can derive the empty string. The grammar is LL(1) when, at every nonterminal, the
//! predict sets of its rules are pairwise disjoint. Then the next terminal always determines the
//! rule, the predictive parser ([`Ll1Table::parse`]) never has a choice, and every terminal
//! string has at most one leftmost derivation: **an LL(1) grammar is unambiguous**.

use crate::error::{DataError, Result};
use crate::grammar::{Grammar, Symbol};

/// A fixed-size set of terminal ids (plus the end-of-input marker, id = number of terminals).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        let new = self.0[w] & b == 0;
        self.0[w] |= b;
        new
    }
    fn union(&mut self, o: &Bits) -> bool {
        let mut changed = false;
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            let n = *a | b;
            changed |= n != *a;
            *a = n;
        }
        changed
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &m)| {
            (0..64)
                .filter(move |b| m >> b & 1 == 1)
                .map(move |b| w * 64 + b)
        })
    }
}

/// The LL(1) parse table of a grammar: for each (nonterminal, lookahead) the one rule to use.
#[derive(Clone, Debug)]
pub struct Ll1Table {
    /// `table[x][t]`: rule index + 1, or 0 for "no rule" (t = terminals.len() is end of input).
    table: Vec<Vec<u32>>,
    start: u32,
    eof: usize,
}

impl Grammar {
    /// Checks the LL(1) condition and builds the parse table. Error: the list of conflicts
    /// (nonterminal, lookahead, the two rules), i.e. the places where the grammar may be
    /// ambiguous.
    pub fn ll1(&self) -> Result<Ll1Table> {
        let n = self.nonterminals.len();
        let eof = self.terminals.len();
        let width = eof + 1;
        // Nullable.
        let mut nullable = vec![false; n];
        loop {
            let mut changed = false;
            for r in &self.rules {
                if !nullable[r.lhs as usize]
                    && r.rhs
                        .iter()
                        .all(|s| matches!(s, Symbol::Nonterminal(y) if nullable[*y as usize]))
                {
                    nullable[r.lhs as usize] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // FIRST of a symbol string, given current FIRST sets of nonterminals.
        let first_of = |rhs: &[Symbol], first: &[Bits]| -> (Bits, bool) {
            let mut set = Bits::new(width);
            for s in rhs {
                match s {
                    Symbol::Terminal(t) => {
                        set.insert(*t as usize);
                        return (set, false);
                    }
                    Symbol::Nonterminal(y) => {
                        set.union(&first[*y as usize]);
                        if !nullable[*y as usize] {
                            return (set, false);
                        }
                    }
                }
            }
            (set, true)
        };
        let mut first = vec![Bits::new(width); n];
        loop {
            let mut changed = false;
            for r in &self.rules {
                let (f, _) = first_of(&r.rhs, &first);
                changed |= first[r.lhs as usize].union(&f);
            }
            if !changed {
                break;
            }
        }
        let mut follow = vec![Bits::new(width); n];
        follow[self.start].insert(eof);
        loop {
            let mut changed = false;
            for r in &self.rules {
                for (i, s) in r.rhs.iter().enumerate() {
                    if let Symbol::Nonterminal(y) = s {
                        let (f, rest_nullable) = first_of(&r.rhs[i + 1..], &first);
                        changed |= follow[*y as usize].union(&f);
                        if rest_nullable {
                            let fl = follow[r.lhs as usize].clone();
                            changed |= follow[*y as usize].union(&fl);
                        }
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut table = vec![vec![0u32; width]; n];
        let mut conflicts = Vec::new();
        for (x, row) in table.iter_mut().enumerate() {
            for ri in self.by_lhs[x].clone() {
                let (mut predict, null) = first_of(&self.rules[ri].rhs, &first);
                if null {
                    predict.union(&follow[x]);
                }
                for t in predict.iter() {
                    if row[t] != 0 && conflicts.len() < 20 {
                        let name = self.terminals.get(t).map(String::as_str).unwrap_or("<end>");
                        conflicts.push(format!(
                            "{} on {name:?}: rules {} and {ri}",
                            self.nonterminals[x],
                            row[t] - 1
                        ));
                    }
                    row[t] = ri as u32 + 1;
                }
            }
        }
        if !conflicts.is_empty() {
            return Err(DataError::argument(
                "Grammar::ll1",
                format!("the grammar is not LL(1): {}", conflicts.join("; ")),
            ));
        }
        Ok(Ll1Table {
            table,
            start: self.start as u32,
            eof,
        })
    }
}

impl Ll1Table {
    /// Parses a terminal sequence with the predictive parser and returns its (unique)
    /// derivation as rule indices in leftmost order. Error: the sequence is not in the language
    /// (naming the position and the token).
    pub fn parse(&self, grammar: &Grammar, tokens: &[u32]) -> Result<Vec<u32>> {
        self.parse_from(grammar, self.start, tokens)
    }

    /// [`Ll1Table::parse`] from nonterminal `from` instead of the start symbol. Valid for a
    /// `from` that can end a string of the language (end of input is in its FOLLOW set): the
    /// parse is then the one of a whole string that ends with `tokens`.
    pub fn parse_from(&self, grammar: &Grammar, from: u32, tokens: &[u32]) -> Result<Vec<u32>> {
        let mut stack = vec![Symbol::Nonterminal(from)];
        let mut pos = 0;
        let mut derivation = Vec::new();
        let name = |t: usize| {
            grammar
                .terminals
                .get(t)
                .map(String::as_str)
                .unwrap_or("<end>")
                .to_string()
        };
        let fail = |m: String| DataError::argument("Ll1Table::parse", m);
        while let Some(sym) = stack.pop() {
            let look = tokens.get(pos).map(|&t| t as usize).unwrap_or(self.eof);
            match sym {
                Symbol::Terminal(t) => {
                    if t as usize != look {
                        return Err(fail(format!(
                            "at token {pos}: expected {:?}, found {:?}",
                            name(t as usize),
                            name(look)
                        )));
                    }
                    pos += 1;
                }
                Symbol::Nonterminal(x) => {
                    let r = self.table[x as usize][look];
                    if r == 0 {
                        return Err(fail(format!(
                            "at token {pos}: {:?} cannot start or follow {}",
                            name(look),
                            grammar.nonterminals[x as usize]
                        )));
                    }
                    derivation.push(r - 1);
                    stack.extend(grammar.rules[r as usize - 1].rhs.iter().rev());
                }
            }
        }
        if pos != tokens.len() {
            return Err(fail(format!(
                "{} tokens left over after a complete parse",
                tokens.len() - pos
            )));
        }
        Ok(derivation)
    }
}
