/**
 * Shared setup for the catalog integration tests: a small scenario whose updates exercise
 * supersedence chains, prerequisites, several products and classifications, and a helper that
 * generates its signed lab catalog into a temp dir.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCatalog, type GenerateResult } from '../src/lab/catalog-gen.ts';
import { defaultCatalogPacker } from '../src/lab/catalog-gen-packer.ts';
import { loadScenario, type Scenario } from '../src/lab/scenario.ts';

export const SCENARIO_YAML = `
timeScale: 0.01
catalog:
  - key: ssu-2026-10
    kb: 5043050
    title: 2026-10 Servicing Stack Update for Windows Server 2022 for x64-based Systems (KB5043050)
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    released: 2026-10-08
  - key: cu-2026-09
    kb: 5041160
    title: 2026-09 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5041160)
    classification: Security Updates
    severity: Important
    products: [Windows Server 2022]
    released: 2026-09-10
    reboot: always
  - key: cu-2026-10
    kb: 5044281
    title: 2026-10 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5044281)
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    released: 2026-10-08
    reboot: always
    requires: [ssu-2026-10]
    supersedes: [cu-2026-09]
  - key: cu-2026-11
    kb: 5044444
    title: 2026-11 Cumulative Update for Windows Server 2022 for x64-based Systems (KB5044444)
    classification: Security Updates
    severity: Critical
    products: [Windows Server 2022]
    released: 2026-11-11
    reboot: always
    impact: exclusive
    requires: [ssu-2026-10]
    supersedes: [cu-2026-10]
  - key: net-2026-11
    kb: 5045555
    title: 2026-11 Cumulative Update for .NET Framework 3.5 and 4.8.1 for Windows Server 2019 and Windows Server 2022 (KB5045555)
    classification: Updates
    products: [Windows Server 2019, Windows Server 2022]
    released: 2026-11-11
  - key: defender-1.421
    title: Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.421.0.0)
    kb: 2267602
    classification: Definition Updates
    products: [Microsoft Defender Antivirus]
    released: 2026-11-20
    optional: true
hosts:
  - name: web01
    product: Windows Server 2022
`;

export interface LabCatalog {
  readonly dir: string;
  readonly scenario: Scenario;
  readonly cab: GenerateResult;
}

/** Writes the scenario and generates its signed catalog (plus `extraUpdates` fillers) in a new temp dir. */
export async function makeLabCatalog(extraUpdates = 0, dir?: string, name = 'wsusscn2.cab'): Promise<LabCatalog> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'patchline-catalog-test-')));
  const file = join(where, 'scenario.yaml');
  await writeFile(file, SCENARIO_YAML);
  const scenario = await loadScenario(file);
  const cab = await generateCatalog(
    scenario,
    { out: join(where, name), extraUpdates, rootDir: join(where, 'root') },
    defaultCatalogPacker(),
  );
  return { dir: where, scenario, cab };
}
