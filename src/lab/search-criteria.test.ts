import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matchesCriteria, parseCriteria, type CriteriaSubject } from './search-criteria.ts';

const notInstalledSoftware: CriteriaSubject = {
  isInstalled: false,
  isHidden: false,
  type: 'software',
  browseOnly: false,
  updateId: 'aaaaaaaa-0000-0000-0000-000000000001',
};
const installed: CriteriaSubject = { ...notInstalledSoftware, isInstalled: true };
const hiddenDriver: CriteriaSubject = { ...notInstalledSoftware, isHidden: true, type: 'driver' };
const optional: CriteriaSubject = { ...notInstalledSoftware, browseOnly: true };

describe('parseCriteria + matchesCriteria', () => {
  const table: { criteria: string; matches: CriteriaSubject[]; rejects: CriteriaSubject[] }[] = [
    {
      criteria: 'IsInstalled=0 and IsHidden=0',
      matches: [notInstalledSoftware, optional],
      rejects: [installed, hiddenDriver],
    },
    {
      criteria: "IsInstalled = 0 and Type = 'Driver' and IsHidden = 1",
      matches: [hiddenDriver],
      rejects: [notInstalledSoftware],
    },
    {
      criteria: "type='software' AND browseonly=0",
      matches: [notInstalledSoftware, installed],
      rejects: [optional, hiddenDriver],
    },
    // rmmagent's query: and binds tighter than or.
    {
      criteria: "IsInstalled=1 or IsInstalled=0 and Type='Software' and IsHidden=0",
      matches: [installed, notInstalledSoftware],
      rejects: [hiddenDriver],
    },
    {
      criteria: "(IsInstalled=0 and UpdateID='AAAAAAAA-0000-0000-0000-000000000001') or (IsHidden=1)",
      matches: [notInstalledSoftware, hiddenDriver],
      rejects: [installed],
    },
    { criteria: "UpdateID!='aaaaaaaa-0000-0000-0000-000000000001'", matches: [], rejects: [notInstalledSoftware] },
    { criteria: 'IsHidden != 1', matches: [notInstalledSoftware], rejects: [hiddenDriver] },
  ];
  for (const row of table) {
    it(row.criteria, () => {
      const parsed = parseCriteria(row.criteria);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.message);
      for (const u of row.matches) assert.equal(matchesCriteria(parsed.criteria, u), true);
      for (const u of row.rejects) assert.equal(matchesCriteria(parsed.criteria, u), false);
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ["IsInstalled=0 and (IsHidden=0 or Type='Driver')", /expected a criterion name|only at the top level/],
    ['(IsInstalled=0 or IsHidden=0)', /only at the top level/],
    ["CategoryIDs contains '0fa1201d-4330-4fa8-8ae9-b877473b6441'", /unsupported criterion "CategoryIDs"/],
    ['IsInstalled=2', /0 or 1/],
    ["Type='Firmware'", /Software' or 'Driver/],
    ["UpdateID='abc", /unterminated string/],
    ['IsInstalled=0 IsHidden=0', /unexpected "IsHidden"/],
    ['IsInstalled=0 and', /expected a criterion name/],
    ['(IsInstalled=0', /missing "\)"/],
    ['IsInstalled=0;', /unexpected ";"/],
  ];
  for (const [criteria, message] of invalid) {
    it(`rejects ${JSON.stringify(criteria)}`, () => {
      const parsed = parseCriteria(criteria);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.message, message);
    });
  }
});
