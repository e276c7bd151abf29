// A tiny seeded PRNG (mulberry32) so every bench run generates the same data.

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);

    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };

  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}

export const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'CA', 'ES', 'IT', 'NL', 'SE', 'PL'] as const;
export const FIRST_NAMES = ['Ada', 'Alan', 'Grace', 'Linus', 'Edsger', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances'] as const;
export const LAST_NAMES = ['Lovelace', 'Turing', 'Hopper', 'Torvalds', 'Dijkstra', 'Liskov', 'Thompson', 'Hamilton', 'Ritchie', 'Allen'] as const;
