//! The Caddyfile's structure: directives, their arguments, and their blocks
//! (a hand parse: enough for a file whose every block ends on a line of its own).

use super::read;

#[derive(Debug)]
pub struct Directive {
    pub words: Vec<String>,
    pub block: Vec<Directive>,
}

/// The Caddyfile's structure: one directive a line, `{` at a line's end
/// opens its block, `}` alone closes it, `#` starts a comment.
pub fn caddyfile() -> Vec<Directive> {
    let mut stack = vec![Directive {
        words: vec![],
        block: vec![],
    }];
    for (n, line) in read("Caddyfile").lines().enumerate() {
        let mut words: Vec<String> = line
            .split_whitespace()
            .take_while(|w| !w.starts_with('#'))
            .map(String::from)
            .collect();
        match words.last().map(String::as_str) {
            None => {}
            Some("}") => {
                assert_eq!(words.len(), 1, "Caddyfile line {}: `}}` alone", n + 1);
                let done = stack.pop().expect("a block to close");
                stack
                    .last_mut()
                    .unwrap_or_else(|| panic!("Caddyfile line {}: unmatched }}", n + 1))
                    .block
                    .push(done);
            }
            Some("{") => {
                words.pop();
                stack.push(Directive {
                    words,
                    block: vec![],
                });
            }
            Some(_) => stack.last_mut().unwrap().block.push(Directive {
                words,
                block: vec![],
            }),
        }
    }
    assert_eq!(stack.len(), 1, "Caddyfile: a block is never closed");
    stack.pop().unwrap().block
}

pub fn find<'a>(directives: &'a [Directive], words: &[&str]) -> Option<&'a Directive> {
    directives
        .iter()
        .find(|d| d.words.len() >= words.len() && d.words.iter().zip(words).all(|(a, b)| a == b))
}

pub fn all<'a>(directives: &'a [Directive], out: &mut Vec<&'a Directive>) {
    for d in directives {
        out.push(d);
        all(&d.block, out);
    }
}
