// Contract only; the implementation replaces this file.
import type { PropertyDef } from '../property-types.js';

export interface CompiledRule {
  /** A boolean SQL predicate over roster_core.profiles (alias `p`), with $1..$n placeholders. */
  sql: string;
  params: unknown[];
  /** True when the rule uses relative dates, so membership changes as time passes. */
  isTimeRelative: boolean;
  /** Property keys the rule reads. */
  propertyKeys: string[];
}

export declare function compileRule(groupKey: string, rule: unknown, properties: Map<string, PropertyDef>): CompiledRule;
