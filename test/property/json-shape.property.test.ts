import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { jsonShapeProblem } from '../../shared/body.ts';

/**
 * The reference: the depth and value count of a parsed JSON value, walked as a tree. It knows
 * nothing of bytes, quotes or escapes, so it cannot share a mistake with the byte scanner.
 */
function shapeOf(value: unknown): { depth: number; values: number } {
  if (Array.isArray(value)) {
    const children = value.map(shapeOf);
    return {
      depth: 1 + Math.max(0, ...children.map((c) => c.depth)),
      // The array itself, and one comma between each two elements.
      values: 1 + Math.max(0, value.length - 1) + children.reduce((sum, c) => sum + c.values, 0),
    };
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.values(value);
    const children = entries.map(shapeOf);
    return {
      depth: 1 + Math.max(0, ...children.map((c) => c.depth)),
      // The object, each key (a string), and the commas between entries.
      values: 1 + entries.length + Math.max(0, entries.length - 1) + children.reduce((sum, c) => sum + c.values, 0),
    };
  }
  return { depth: 0, values: typeof value === 'string' ? 1 : 0 };
}

function expected(value: unknown, limits: { maxDepth: number; maxValues: number }): 'depth' | 'values' | undefined {
  const shape = shapeOf(value);
  // The scanner stops at the first limit it passes while reading: deep nesting is seen on the way down.
  if (shape.depth > limits.maxDepth) return 'depth';
  if (shape.values > limits.maxValues) return 'values';
  return undefined;
}

/** Strings full of what trips a byte scanner: quotes, backslashes, brackets, commas, non-ASCII. */
const trickyString = fc
  .array(fc.constantFrom('"', '\\', '\\\\', '\\"', '[', ']', '{', '}', ',', 'é', '😀', 'a', ' '), { maxLength: 12 })
  .map((parts) => parts.join(''));

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1.5e10),
    trickyString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(trickyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('the JSON shape check before parsing (issue 15: it skips strings with indexOf)', () => {
  test('finds the same depth and value count as a walk of the parsed value', () => {
    fc.assert(
      fc.property(
        jsonValue,
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 60 }),
        fc.boolean(),
        (value, maxDepth, maxValues, pretty) => {
          const text = pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value);
          const problem = jsonShapeProblem(Buffer.from(text), { maxDepth, maxValues });
          const want = expected(value, { maxDepth, maxValues });
          if (want === undefined) assert.equal(problem, undefined, text);
          else if (want === 'depth' && shapeOf(value).values <= maxValues)
            assert.equal(problem, `nested deeper than ${maxDepth}`, text);
          else if (want === 'values') assert.equal(problem, `more than ${maxValues} values`, text);
          // Too deep and too many: whichever the scanner passes first while reading.
          else assert.notEqual(problem, undefined, text);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a body 10,000 deep, or of 3 million values, is refused; a real webhook is not', () => {
    const limits = { maxDepth: 64, maxValues: 2_000_000 };
    assert.equal(
      jsonShapeProblem(Buffer.from('['.repeat(10_000) + ']'.repeat(10_000)), limits),
      'nested deeper than 64',
    );
    assert.equal(jsonShapeProblem(Buffer.from(`[${'0,'.repeat(3_000_000)}0]`), limits), 'more than 2000000 values');
    // A quote escaped by an odd number of backslashes does not end the string; by an even number it does.
    assert.equal(
      jsonShapeProblem(Buffer.from(String.raw`{"a":"\\\"[[[[","b":"\\"}`), { ...limits, maxDepth: 1 }),
      undefined,
    );
    assert.equal(
      jsonShapeProblem(Buffer.from(String.raw`{"a":"\\",[[[[1]]]]}`), { ...limits, maxDepth: 2 }),
      'nested deeper than 2',
    );
    // An unterminated string is left to JSON.parse, which says where.
    assert.equal(jsonShapeProblem(Buffer.from('{"a":"[[[['), { ...limits, maxDepth: 1 }), undefined);
  });
});
