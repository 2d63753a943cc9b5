//! The English-like grammar of the built-in corpus, and how its terminals become text.
//!
//! A **document** is a paragraph of two or more sentences (3 on average: `More → S More` with
//! probability 1/2). Seven sentence templates, each recognisable by its first word:
//!
//! | template | first word | example |
//! |---|---|---|
//! | `Clause Tail` | a determiner, a name or a subject pronoun | `The old farmer reads a letter.` |
//! | `PP , Clause Tail` | a preposition | `Near the river, two dogs sleep quietly.` |
//! | `Sub , Clause Tail` | a subordinator | `When Anna sings, the birds listen.` |
//! | `Question ?` | is / are / does / do | `Does the cat see the wolves?` |
//! | `there ThereRest .` | there | `There are many boats on the lake.` |
//! | `please VBase .` | please | `Please close the door.` |
//! | `what Exclaim !` | what | `What a lovely garden!` |
//!
//! with `Tail → . | Conj Clause .` (but / so / yet). Subjects agree with their verbs in number
//! (`the cat sleeps`, `the cats sleep`; `the` takes either and the noun decides); noun phrases
//! take up to two adjectives; a subject may carry a relative clause (`that chases the dog`) or a
//! prepositional phrase; object noun phrases recurse through `of` (`the roof of the house of the
//! king`); verb phrases coordinate with `and`, take adverbs, prepositional phrases, modals
//! (`will`, `can`, … + base form), copular predicates (`is very happy`, `are in the garden`) and
//! sentential complements (`says that` + Clause), which recurse. Every recursion has a stopping
//! probability, and [`crate::grammar::Grammar::expectation`] checks that the whole is
//! subcritical. The lexicon has 345 words (plus eleven function words in the rules: that, is, are, be, and, of, there, please, what, does, do); each belongs to exactly one lexical category
//! (a test checks it), and within a category word `i` has Zipf weight `1 / (i + 1)^0.9`.
//!
//! **Why each text has exactly one derivation.**
//! 1. *Terminals from text.* A terminal is a word of ASCII letters or one of `. , ? !`. Text is
//!    rendered by joining words with one space, attaching punctuation to the preceding word, and
//!    upper-casing the first letter of each sentence's first word ([`EnglishGrammar::render`]).
//!    Splitting on spaces and peeling trailing punctuation gives the tokens back; a capitalised
//!    token that is not a lexicon entry is lower-cased (all entries are lower case except the
//!    names, which are capitalised, and no two entries are equal ignoring case). So rendering is
//!    injective and [`EnglishGrammar::lex`] inverts it.
//! 2. *Derivations from terminals.* The grammar is LL(1): at every nonterminal, the next terminal
//!    determines the rule (checked by [`crate::grammar::Grammar::ll1`] when the grammar is built,
//!    so a change that introduced an ambiguity, such as a PP that could attach to the verb or to
//!    its object, is caught at once). The places where English is ambiguous were designed out:
//!    object noun phrases take only `of` phrases and verb phrases take a prepositional phrase only
//!    after an intransitive verb (no attachment ambiguity); a sentential complement ends its verb
//!    phrase, which then cannot coordinate (no `and` attachment ambiguity); clause coordination
//!    uses but / so / yet, never `and`.
//!
//! Hence string → terminals → derivation are both unique, the document's entropy equals the
//! derivation's, and the test suite parses sampled documents back to their sampled derivations.

use crate::error::{DataError, Result};
use crate::grammar::{is_punctuation, Grammar, GrammarBuilder};
use crate::ll1::Ll1Table;
use std::sync::OnceLock;
use tensor::Rng;

const ZIPF: f64 = 0.9;

/// (category, words). Nouns and adjectives start with a consonant sound so `a` always fits.
const LEXICON: &[(&str, &[&str])] = &[
    (
        "NSg",
        &[
            "cat", "dog", "bird", "horse", "farmer", "teacher", "doctor", "baker", "child", "girl",
            "boy", "man", "woman", "king", "queen", "garden", "river", "house", "road", "forest",
            "mountain", "village", "city", "table", "window", "door", "book", "letter", "song",
            "story", "boat", "ship", "bridge", "tree", "flower", "stone", "lamp", "cup", "box",
            "basket", "rabbit", "fox", "wolf", "mouse", "sailor", "painter", "neighbor", "friend",
            "student", "pilot",
        ],
    ),
    (
        "NPl",
        &[
            "cats",
            "dogs",
            "birds",
            "horses",
            "farmers",
            "teachers",
            "doctors",
            "bakers",
            "children",
            "girls",
            "boys",
            "men",
            "women",
            "kings",
            "queens",
            "gardens",
            "rivers",
            "houses",
            "roads",
            "forests",
            "mountains",
            "villages",
            "cities",
            "tables",
            "windows",
            "doors",
            "books",
            "letters",
            "songs",
            "stories",
            "boats",
            "ships",
            "bridges",
            "trees",
            "flowers",
            "stones",
            "lamps",
            "cups",
            "boxes",
            "baskets",
            "rabbits",
            "foxes",
            "wolves",
            "mice",
            "sailors",
            "painters",
            "neighbors",
            "friends",
            "students",
            "pilots",
        ],
    ),
    (
        "ViSg",
        &[
            "sleeps", "runs", "sings", "waits", "laughs", "smiles", "dances", "swims", "rests",
            "works", "walks", "jumps", "falls", "shines", "cries", "listens", "travels", "grows",
            "returns", "wanders",
        ],
    ),
    (
        "ViPl",
        &[
            "sleep", "run", "sing", "wait", "laugh", "smile", "dance", "swim", "rest", "work",
            "walk", "jump", "fall", "shine", "cry", "listen", "travel", "grow", "return", "wander",
        ],
    ),
    (
        "VtSg",
        &[
            "sees",
            "finds",
            "likes",
            "watches",
            "follows",
            "carries",
            "paints",
            "builds",
            "opens",
            "closes",
            "remembers",
            "visits",
            "reads",
            "loves",
            "chases",
            "holds",
            "calls",
            "helps",
            "pushes",
            "cleans",
            "needs",
            "wants",
            "forgets",
            "brings",
        ],
    ),
    (
        "VtPl",
        &[
            "see", "find", "like", "watch", "follow", "carry", "paint", "build", "open", "close",
            "remember", "visit", "read", "love", "chase", "hold", "call", "help", "push", "clean",
            "need", "want", "forget", "bring",
        ],
    ),
    (
        "VsSg",
        &[
            "says", "thinks", "knows", "believes", "hopes", "hears", "feels", "dreams",
        ],
    ),
    (
        "VsPl",
        &[
            "say", "think", "know", "believe", "hope", "hear", "feel", "dream",
        ],
    ),
    (
        "Modal",
        &[
            "will", "can", "must", "should", "might", "may", "could", "would",
        ],
    ),
    (
        "Adv",
        &[
            "quietly",
            "slowly",
            "quickly",
            "happily",
            "often",
            "today",
            "again",
            "early",
            "carefully",
            "gladly",
            "softly",
            "rarely",
            "sometimes",
            "together",
        ],
    ),
    (
        "Adj",
        &[
            "big", "small", "little", "red", "green", "blue", "quiet", "happy", "sad", "tall",
            "young", "brave", "clever", "gentle", "dark", "bright", "cold", "warm", "tired",
            "hungry", "busy", "famous", "strange", "lovely", "wooden", "golden", "silver",
            "narrow", "wide", "heavy", "soft", "proud", "kind", "calm", "wild", "pretty",
            "friendly", "noisy", "lazy", "rich", "poor", "new", "sleepy", "funny",
        ],
    ),
    ("Deg", &["very", "quite", "rather", "truly"]),
    (
        "Prep",
        &[
            "in", "on", "near", "under", "behind", "beside", "across", "through", "into", "along",
            "over", "toward", "around", "beyond",
        ],
    ),
    (
        "Name",
        &[
            "Anna", "Tom", "Maria", "Sam", "Lucy", "Peter", "Clara", "Jack", "Emma", "Leo", "Nora",
            "Felix", "Rosa", "Max", "Ivy",
        ],
    ),
    ("PronSg", &["he", "she"]),
    ("PronPl", &["they", "we"]),
    ("PronObj", &["him", "her", "them", "us", "me", "it"]),
    ("DetSg", &["a", "every", "each", "this", "one", "no"]),
    (
        "DetPl",
        &[
            "some", "many", "these", "those", "two", "three", "several", "few",
        ],
    ),
    ("DetAny", &["the", "my", "our", "your", "their", "his"]),
    (
        "Subord",
        &[
            "when", "because", "if", "although", "while", "after", "before", "unless", "once",
        ],
    ),
    ("Conj", &["but", "so", "yet"]),
];

/// The syntactic rules: (lhs, probability, rhs). Upper-case names are nonterminals.
const RULES: &[(&str, f64, &str)] = &[
    ("Doc", 1.0, "S S More"),
    ("More", 0.5, "S More"),
    ("More", 0.5, ""),
    // Sentence templates, told apart by their first word.
    ("S", 0.45, "Clause Tail"),
    ("S", 0.12, "PP , Clause Tail"),
    ("S", 0.12, "Sub , Clause Tail"),
    ("S", 0.13, "Question ?"),
    ("S", 0.08, "there ThereRest ."),
    ("S", 0.05, "please VBase ."),
    ("S", 0.05, "what Exclaim !"),
    ("Tail", 0.8, "."),
    ("Tail", 0.2, "Conj Clause ."),
    ("Sub", 1.0, "Subord Clause"),
    // A clause: subject and verb phrase agreeing in number (left-factored after `the`).
    ("Clause", 0.25, "DetSg Adjs SgTail"),
    ("Clause", 0.15, "DetPl Adjs PlTail"),
    ("Clause", 0.30, "DetAny Adjs AnyTail"),
    ("Clause", 0.18, "Name VPSg"),
    ("Clause", 0.07, "PronSg VPSg"),
    ("Clause", 0.05, "PronPl VPPl"),
    ("AnyTail", 0.6, "SgTail"),
    ("AnyTail", 0.4, "PlTail"),
    ("SgTail", 1.0, "NSg PostSg VPSg"),
    ("PlTail", 1.0, "NPl PostPl VPPl"),
    ("PostSg", 0.8, ""),
    ("PostSg", 0.12, "that RelSg"),
    ("PostSg", 0.08, "PP"),
    ("PostPl", 0.8, ""),
    ("PostPl", 0.12, "that RelPl"),
    ("PostPl", 0.08, "PP"),
    ("RelSg", 0.5, "ViSg AdvOpt"),
    ("RelSg", 0.5, "VtSg ObjNP"),
    ("RelPl", 0.5, "ViPl AdvOpt"),
    ("RelPl", 0.5, "VtPl ObjNP"),
    ("Adjs", 0.6, ""),
    ("Adjs", 0.4, "Adj Adjs2"),
    ("Adjs2", 0.8, ""),
    ("Adjs2", 0.2, "Adj"),
    // Verb phrases. A sentential complement ends the verb phrase (no coordination after it).
    ("VPSg", 0.9, "VCoreSg VMoreSg"),
    ("VPSg", 0.1, "VsSg that Clause"),
    ("VPPl", 0.9, "VCorePl VMorePl"),
    ("VPPl", 0.1, "VsPl that Clause"),
    ("VMoreSg", 0.85, ""),
    ("VMoreSg", 0.15, "and VCoreSg VMoreSg"),
    ("VMorePl", 0.85, ""),
    ("VMorePl", 0.15, "and VCorePl VMorePl"),
    ("VCoreSg", 0.35, "ViSg AdvOpt PPOpt"),
    ("VCoreSg", 0.35, "VtSg ObjNP AdvOpt"),
    ("VCoreSg", 0.15, "is Pred"),
    ("VCoreSg", 0.15, "Modal VSimple"),
    ("VCorePl", 0.35, "ViPl AdvOpt PPOpt"),
    ("VCorePl", 0.35, "VtPl ObjNP AdvOpt"),
    ("VCorePl", 0.15, "are Pred"),
    ("VCorePl", 0.15, "Modal VSimple"),
    ("VSimple", 0.4, "ViPl AdvOpt PPOpt"),
    ("VSimple", 0.4, "VtPl ObjNP AdvOpt"),
    ("VSimple", 0.2, "be Pred"),
    ("VBase", 0.9, "VSimple"),
    ("VBase", 0.1, "VsPl that Clause"),
    ("AdvOpt", 0.75, ""),
    ("AdvOpt", 0.25, "Adv"),
    ("PPOpt", 0.65, ""),
    ("PPOpt", 0.35, "PP"),
    ("PP", 1.0, "Prep ObjNP"),
    ("Pred", 0.45, "Adj"),
    ("Pred", 0.2, "Deg Adj"),
    ("Pred", 0.35, "PP"),
    // Object noun phrases: no agreement, recursion through `of`.
    ("ObjNP", 0.3, "DetSg Adjs NSg ObjPost"),
    ("ObjNP", 0.15, "DetPl Adjs NPl ObjPost"),
    ("ObjNP", 0.35, "DetAny Adjs NAny ObjPost"),
    ("ObjNP", 0.12, "Name"),
    ("ObjNP", 0.08, "PronObj"),
    ("NAny", 0.6, "NSg"),
    ("NAny", 0.4, "NPl"),
    ("ObjPost", 0.85, ""),
    ("ObjPost", 0.15, "of ObjNP"),
    // Questions, existentials, imperatives, exclamations.
    ("Question", 0.35, "is QSg Pred"),
    ("Question", 0.2, "are QPl Pred"),
    ("Question", 0.3, "does QSg VBase"),
    ("Question", 0.15, "do QPl VBase"),
    ("QSg", 0.3, "DetSg Adjs NSg"),
    ("QSg", 0.4, "DetAny Adjs NSg"),
    ("QSg", 0.2, "Name"),
    ("QSg", 0.1, "PronSg"),
    ("QPl", 0.4, "DetPl Adjs NPl"),
    ("QPl", 0.45, "DetAny Adjs NPl"),
    ("QPl", 0.15, "PronPl"),
    ("ThereRest", 0.6, "is a Adjs NSg PPOpt"),
    ("ThereRest", 0.4, "are DetPl Adjs NPl PPOpt"),
    ("Exclaim", 0.6, "a Adj Adjs2 NSg"),
    ("Exclaim", 0.4, "Adj Adjs2 NPl"),
];

/// The built-in grammar with its LL(1) table and lexicon (built once per process).
#[derive(Debug)]
pub struct EnglishGrammar {
    grammar: Grammar,
    table: Ll1Table,
    /// Rendered byte length of each terminal, including the space before a word.
    cost: Vec<usize>,
    is_end: Vec<bool>,
    /// The nonterminal of one sentence, `S`.
    sentence: u32,
}

impl EnglishGrammar {
    /// The shared instance. Building checks the grammar (LL(1), subcritical); a failure there is
    /// a bug in this file, caught by the test suite, so it panics with the conflicts.
    pub fn get() -> &'static EnglishGrammar {
        static G: OnceLock<EnglishGrammar> = OnceLock::new();
        G.get_or_init(|| EnglishGrammar::build().expect("the built-in grammar is valid"))
    }

    /// Builds and checks the grammar (errors: not LL(1), not subcritical).
    pub fn build() -> Result<EnglishGrammar> {
        let mut b = GrammarBuilder::new();
        for &(lhs, p, rhs) in RULES {
            b.rule(lhs, p, rhs);
        }
        for &(cat, words) in LEXICON {
            b.words(cat, words, ZIPF);
        }
        let grammar = b.build("Doc")?;
        let table = grammar.ll1()?;
        let sentence = (grammar.nonterminal_id("S"))
            .ok_or_else(|| DataError::argument("EnglishGrammar::build", "no sentence symbol S"))?;
        grammar.expected_cost(|_| 1.0)?; // subcriticality
        let cost = grammar
            .terminals()
            .iter()
            .map(|t| {
                if is_punctuation(t) {
                    t.len()
                } else {
                    t.len() + 1
                }
            })
            .collect();
        let is_end = grammar
            .terminals()
            .iter()
            .map(|t| matches!(t.as_str(), "." | "?" | "!"))
            .collect();
        Ok(EnglishGrammar {
            grammar,
            table,
            cost,
            is_end,
            sentence,
        })
    }

    /// The underlying grammar.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The lexicon: (category, words).
    pub fn lexicon() -> &'static [(&'static str, &'static [&'static str])] {
        LEXICON
    }

    /// Bytes terminal `t` adds to a document (a word counts its leading space; the first word
    /// of a document has none, so a document is `Σ cost − 1` bytes long).
    pub fn cost(&self, t: u32) -> usize {
        self.cost[t as usize]
    }

    /// Samples one document: appends its text to `text` and returns `ln P(document)`; if
    /// `derivation` is given, the rules used are appended to it.
    pub fn sample(
        &self,
        rng: &mut Rng,
        text: &mut String,
        derivation: Option<&mut Vec<u32>>,
    ) -> f64 {
        let mut terms = Vec::with_capacity(64);
        let lp = self.grammar.sample(rng, &mut terms, derivation);
        self.render_into(&terms, text);
        lp
    }

    /// Renders terminals as text: words joined by single spaces, punctuation attached, the first
    /// letter of each sentence upper-cased.
    pub fn render(&self, terminals: &[u32]) -> String {
        let mut s = String::new();
        self.render_into(terminals, &mut s);
        s
    }

    fn render_into(&self, terminals: &[u32], out: &mut String) {
        let mut sentence_start = true;
        for (i, &t) in terminals.iter().enumerate() {
            let w = &self.grammar.terminals()[t as usize];
            if is_punctuation(w) {
                out.push_str(w);
                sentence_start = self.is_end[t as usize];
                continue;
            }
            if i > 0 {
                out.push(' ');
            }
            if sentence_start {
                let mut c = w.chars();
                let first = c.next().expect("words are not empty");
                out.push(first.to_ascii_uppercase());
                out.push_str(c.as_str());
            } else {
                out.push_str(w);
            }
            sentence_start = false;
        }
    }

    /// The inverse of [`EnglishGrammar::render`]: text → terminals. Error: a word outside the
    /// lexicon, or spacing that rendering never produces.
    pub fn lex(&self, text: &str) -> Result<Vec<u32>> {
        let fail = |m: String| DataError::argument("EnglishGrammar::lex", m);
        let g = &self.grammar;
        let mut out = Vec::new();
        let mut sentence_start = true;
        for piece in text.split(' ') {
            let word = piece.trim_end_matches(['.', ',', '?', '!']);
            if word.is_empty() {
                return Err(fail(format!("empty word before {piece:?}")));
            }
            let id = match g.terminal_id(word) {
                Some(id) => id,
                None if sentence_start => {
                    let mut cs = word.chars();
                    let first = cs.next().expect("checked non-empty");
                    let lower = first.to_lowercase().collect::<String>() + cs.as_str();
                    g.terminal_id(&lower)
                        .ok_or_else(|| fail(format!("unknown word {word:?}")))?
                }
                None => return Err(fail(format!("unknown word {word:?}"))),
            };
            out.push(id);
            sentence_start = false;
            for c in piece[word.len()..].chars() {
                let id = g
                    .terminal_id(c.encode_utf8(&mut [0; 4]))
                    .ok_or_else(|| fail(format!("{c:?}")))?;
                out.push(id);
                sentence_start = self.is_end[id as usize];
            }
        }
        Ok(out)
    }

    /// `ln P` of one sentence under the sentence symbol `S`: `text` as the grammar renders a
    /// sentence (capitalised, ending in `.`, `?` or `!`). Error: the grammar does not
    /// generate exactly this text.
    pub fn sentence_log_prob(&self, text: &str) -> Result<f64> {
        let terms = self.lex(text)?;
        if self.render(&terms) != text {
            return Err(DataError::argument(
                "EnglishGrammar::sentence_log_prob",
                format!("{text:?} is not written as the grammar writes it"),
            ));
        }
        let derivation = self
            .table
            .parse_from(&self.grammar, self.sentence, &terms)?;
        Ok(self.grammar.log_prob(&derivation))
    }

    /// The nonterminal of one sentence, `S`.
    pub fn sentence_symbol(&self) -> u32 {
        self.sentence
    }

    /// Parses a document's text back to its unique derivation (rule indices, leftmost order).
    pub fn parse(&self, text: &str) -> Result<Vec<u32>> {
        let terms = self.lex(text)?;
        self.table.parse(&self.grammar, &terms)
    }
}
