"""Syntax-tree chunking: definitions found per language, comments attached, files rebuilt exactly."""

import inspect
import pathlib

import pytest

from lctk.sources.chunking import chunk_text
from lctk.sources.languages import LANGUAGES, language_for_path

SAMPLES = {
    "python": ('''import os

# Adds numbers.
@cache
def add(a, b):
    return a + b


class Client:
    """HTTP client."""

    def get(self, url):
        return url

    async def post(self, url,
                   data):
        return data

x = add(1, 2)
''', {("function", "add"), ("class", "Client"), ("method", "Client.get"), ("method", "Client.post")}),
    "javascript": ('''const fs = require("fs");

/** Reads a file. */
function read(path) {
  return fs.readFileSync(path);
}

export const parse = (text) => JSON.parse(text);

class Store {
  constructor() { this.items = []; }
  add(item) {
    this.items.push(item);
  }
}
''', {("function", "read"), ("function", "parse"), ("class", "Store"), ("method", "Store.constructor"), ("method", "Store.add")}),
    "typescript": ('''interface Options { retries: number }

export function retry(fn: () => void, opts: Options): void {
  for (let i = 0; i < opts.retries; i++) fn();
}

@Injectable()
export class Service {
  private cache = new Map<string, number>();
  get(key: string): number | undefined {
    return this.cache.get(key);
  }
}

type Id = string;
''', {("type", "Options"), ("function", "retry"), ("class", "Service"), ("method", "Service.get"), ("type", "Id")}),
    "go": ('''package main

import "fmt"

// Point is a 2-D point.
type Point struct {
	X, Y int
}

// Add returns p+q.
func (p *Point) Add(q Point) Point {
	return Point{p.X + q.X, p.Y + q.Y}
}

func main() {
	fmt.Println(Point{1, 2})
}
''', {("type", "Point"), ("function", "Point.Add"), ("function", "main")}),
    "rust": ('''use std::fmt;

/// A counter.
#[derive(Debug)]
pub struct Counter {
    n: u32,
}

impl Counter {
    pub fn new() -> Self {
        Counter { n: 0 }
    }

    fn bump(&mut self) {
        self.n += 1;
    }
}

fn main() {
    let c = Counter::new();
}
''', {("type", "Counter"), ("class", "Counter"), ("method", "Counter.new"), ("method", "Counter.bump"), ("function", "main")}),
    "java": ('''package demo;

/** A greeter. */
public class Greeter {
    private final String name;

    public Greeter(String name) {
        this.name = name;
    }

    @Override
    public String toString() {
        return "Hello " + name;
    }
}
''', {("class", "Greeter"), ("method", "Greeter.Greeter"), ("method", "Greeter.toString")}),
    "c": ('''#include <stdio.h>

/* A point. */
struct point { int x, y; };

static int add(int a, int b)
{
    return a + b;
}

int main(void) { return add(1, 2); }
''', {("type", "point"), ("function", "add"), ("function", "main")}),
    "cpp": ('''#include <vector>

namespace geo {
class Shape {
 public:
  virtual double area() const { return 0; }
};
}

template <typename T>
T twice(T x) { return x + x; }
''', {("class", "geo"), ("class", "geo.Shape"), ("method", "geo.Shape.area"), ("function", "twice")}),
    "ruby": ('''require "json"

# A user.
class User
  attr_reader :name

  def initialize(name)
    @name = name
  end

  def self.load(path)
    new(JSON.parse(File.read(path))["name"])
  end
end
''', {("class", "User"), ("method", "User.initialize"), ("method", "User.load")}),
}


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_definitions_are_found_and_the_file_is_rebuilt_exactly(language):
    source, expected = SAMPLES[language]
    chunks = chunk_text(source, language)
    assert "".join(chunk.text for chunk in chunks) == source
    found = {(chunk.kind, chunk.name) for chunk in chunks if chunk.kind != "module"}
    assert expected <= found, found
    line = 1
    for chunk in chunks:
        assert chunk.start_line == line
        line += chunk.text.count("\n")


def test_comments_and_decorators_stay_with_their_definition():
    chunks = {c.name: c for c in chunk_text(SAMPLES["python"][0], "python")}
    assert chunks["add"].text.startswith("# Adds numbers.\n@cache\ndef add")
    assert chunks["add"].signature_lines == 3  # comment, decorator, def line
    assert chunks["Client.post"].signature_lines == 2  # a signature over two lines
    assert chunks["Client.post"].context == "class Client:"
    rust = {c.name: c for c in chunk_text(SAMPLES["rust"][0], "rust") if c.kind == "type"}
    assert rust["Counter"].text.startswith("/// A counter.\n#[derive(Debug)]")
    java = {c.name: c for c in chunk_text(SAMPLES["java"][0], "java")}
    assert "@Override" in java["Greeter.toString"].text


def test_async_def_is_a_function():
    chunks = chunk_text("async def fetch(url):\n    return await get(url)\n", "python")
    assert [(c.kind, c.name) for c in chunks] == [("function", "fetch")]


def test_real_standard_library_files_round_trip():
    import asyncio
    import email

    files = sorted(pathlib.Path(inspect.getfile(asyncio)).parent.glob("*.py"))
    files += sorted(pathlib.Path(inspect.getfile(email)).parent.glob("*.py"))
    definitions = 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        chunks = chunk_text(text, "python")
        assert "".join(c.text for c in chunks) == text, path
        definitions += sum(c.kind in ("function", "method") for c in chunks)
    assert definitions > 1000


def test_unknown_languages_fall_back_to_blank_line_blocks():
    text = "first paragraph\nstill first\n\n\nsecond\n\nthird without newline"
    chunks = chunk_text(text, None)
    assert [c.text for c in chunks] == ["first paragraph\nstill first\n\n\n", "second\n\n", "third without newline"]
    assert [c.start_line for c in chunks] == [1, 5, 7] and {c.kind for c in chunks} == {"block"}
    assert chunk_text("", "python") == [] and chunk_text("", None) == []


def test_language_detection():
    assert language_for_path("src/app/main.tsx") == "tsx"
    assert language_for_path("lib/x.HPP") == "cpp"
    assert language_for_path("bin/tool", "#!/usr/bin/env python3") == "python"
    assert language_for_path("README.md") is None
    assert set(LANGUAGES) >= {"python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "ruby"}


def test_nested_classes_and_syntax_errors():
    nested = "class Outer:\n    class Inner:\n        def f(self):\n            return 1\n\n    def g(self):\n        return 2\n"
    chunks = chunk_text(nested, "python")
    assert "".join(c.text for c in chunks) == nested
    names = {(c.kind, c.name) for c in chunks}
    assert {("class", "Outer"), ("class", "Outer.Inner"), ("method", "Outer.Inner.f"), ("method", "Outer.g")} <= names
    inner_f = next(c for c in chunks if c.name == "Outer.Inner.f")
    assert inner_f.context == "class Outer:\nclass Inner:" and inner_f.context_lines == (1, 2)
    broken = "def ok():\n    return 1\n\ndef broken(:\n    return (\n\nclass C:\n    pass\n"
    chunks = chunk_text(broken, "python")
    assert "".join(c.text for c in chunks) == broken  # a syntax error never loses text
    assert ("function", "ok") in {(c.kind, c.name) for c in chunks}
