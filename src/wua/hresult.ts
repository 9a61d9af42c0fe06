/**
 * HRESULTs in words: the name, Microsoft's meaning and — for the codes administrators commonly
 * meet — what to try, for any code a provider, the Task Scheduler or servicing reports.
 *
 * Sources: the generated WUA table (hresult-table.ts, from the Windows SDK's wuerror.h), plus the
 * Win32/COM/CBS/Task Scheduler codes below (winerror.h messages). Codes in neither table still get
 * a useful description from their bits: severity, facility and, for Win32 errors, the error number.
 * Pure: no I/O.
 */
import { usageError } from '../domain/errors.ts';
import { WUA_ALT_NAMES, WUA_ALT_VALUES, WUA_CODES } from './hresult-table.ts';

export interface HResultDescription {
  /** "0x80240016": 8 upper-case hex digits, the protocol's form. */
  readonly hresult: string;
  /** The symbolic name (WU_E_INSTALL_NOT_ALLOWED), or null for a code in no table. */
  readonly name: string | null;
  /** One sentence, without a final period. */
  readonly meaning: string;
  /** What an administrator should try, or null when there is nothing specific to say. */
  readonly advice: string | null;
}

type Row = readonly [value: number, name: string, message: string];

/** Non-WUA codes administrators meet around Windows Update; messages follow winerror.h. */
const COMMON_CODES: readonly Row[] = [
  [0x00000000, 'S_OK', 'The operation completed successfully.'],
  [0x00000001, 'S_FALSE', 'The operation completed successfully but returned false.'],
  [0x80004001, 'E_NOTIMPL', 'Not implemented.'],
  [0x80004002, 'E_NOINTERFACE', 'No such interface supported.'],
  [0x80004004, 'E_ABORT', 'Operation aborted.'],
  [0x80004005, 'E_FAIL', 'Unspecified error.'],
  [0x8000ffff, 'E_UNEXPECTED', 'Catastrophic failure.'],
  [0x80040154, 'REGDB_E_CLASSNOTREG', 'Class not registered.'],
  [0x80080005, 'CO_E_SERVER_EXEC_FAILURE', 'Server execution failed.'],
  [0x80070002, 'ERROR_FILE_NOT_FOUND', 'The system cannot find the file specified.'],
  [0x80070003, 'ERROR_PATH_NOT_FOUND', 'The system cannot find the path specified.'],
  [
    0x80070005,
    'E_ACCESSDENIED',
    'Access is denied. Windows Update refuses most calls made under a remote logon (WinRM, SSH, DCOM or any network logon), even by an administrator.',
  ],
  [0x8007000d, 'ERROR_INVALID_DATA', 'The data is invalid.'],
  [0x8007000e, 'E_OUTOFMEMORY', 'Not enough memory resources are available to complete this operation.'],
  [
    0x80070020,
    'ERROR_SHARING_VIOLATION',
    'The process cannot access the file because it is being used by another process.',
  ],
  [0x80070027, 'ERROR_HANDLE_DISK_FULL', 'The disk is full.'],
  [0x80070057, 'E_INVALIDARG', 'The parameter is incorrect.'],
  [0x80070070, 'ERROR_DISK_FULL', 'There is not enough space on the disk.'],
  [
    0x80070422,
    'ERROR_SERVICE_DISABLED',
    'The service cannot be started, either because it is disabled or because it has no enabled devices associated with it.',
  ],
  [0x8007045b, 'ERROR_SHUTDOWN_IN_PROGRESS', 'A system shutdown is in progress.'],
  [0x80070490, 'ERROR_NOT_FOUND', 'Element not found.'],
  [0x800704a6, 'ERROR_SHUTDOWN_IS_SCHEDULED', 'A system shutdown has already been scheduled.'],
  [0x800704c7, 'ERROR_CANCELLED', 'The operation was canceled by the user.'],
  [0x80070570, 'ERROR_FILE_CORRUPT', 'The file or directory is corrupted and unreadable.'],
  [0x800705b4, 'ERROR_TIMEOUT', 'This operation returned because the timeout period expired.'],
  [0x80070643, 'ERROR_INSTALL_FAILURE', 'Fatal error during installation.'],
  [0x80070652, 'ERROR_INSTALL_ALREADY_RUNNING', 'Another installation is already in progress.'],
  [0x800706ba, 'RPC_S_SERVER_UNAVAILABLE', 'The RPC server is unavailable.'],
  [0x800706be, 'RPC_S_CALL_FAILED', 'The remote procedure call failed.'],
  [
    0x80070bc2,
    'ERROR_SUCCESS_REBOOT_REQUIRED',
    'The requested operation is successful. Changes will not be effective until the system is rebooted.',
  ],
  [
    0x80070bc9,
    'ERROR_FAIL_REBOOT_REQUIRED',
    'The requested operation failed. A system reboot is required to roll back changes made.',
  ],
  [0x80072ee2, 'ERROR_INTERNET_TIMEOUT', 'The operation timed out (WinHTTP/WinINet error 12002).'],
  [
    0x80072ee7,
    'ERROR_INTERNET_NAME_NOT_RESOLVED',
    'The server name or address could not be resolved (WinHTTP/WinINet error 12007).',
  ],
  [
    0x80072efd,
    'ERROR_INTERNET_CANNOT_CONNECT',
    'A connection with the server could not be established (WinHTTP/WinINet error 12029).',
  ],
  [
    0x80072efe,
    'ERROR_INTERNET_CONNECTION_ABORTED',
    'The connection with the server was terminated abnormally (WinHTTP/WinINet error 12030).',
  ],
  [
    0x80072f8f,
    'ERROR_INTERNET_SECURE_FAILURE',
    'A security error occurred on the TLS connection (WinHTTP/WinINet error 12175).',
  ],
  [0x80073701, 'ERROR_SXS_ASSEMBLY_MISSING', 'The referenced assembly could not be found.'],
  [0x80073712, 'ERROR_SXS_COMPONENT_STORE_CORRUPT', 'The component store has been corrupted.'],
  [0x800f081f, 'CBS_E_SOURCE_MISSING', 'The source files for the package or feature could not be found.'],
  [0x800f0823, 'CBS_E_NEW_SERVICING_STACK_REQUIRED', 'The package requires a newer version of the servicing stack.'],
  [
    0x800f0831,
    'CBS_E_STORE_CORRUPTION',
    'The component store is corrupted: a package or manifest it needs is missing.',
  ],
  [
    0x800f0922,
    'CBS_E_INSTALLERS_FAILED',
    'Servicing failed: an advanced installer or generic command of the package failed.',
  ],
  // Task Scheduler (winerror.h; "Task Scheduler Error and Success Constants").
  [0x00041300, 'SCHED_S_TASK_READY', 'The task is ready to run at its next scheduled time.'],
  [0x00041301, 'SCHED_S_TASK_RUNNING', 'The task is currently running.'],
  [0x00041302, 'SCHED_S_TASK_DISABLED', 'The task will not run at the scheduled times because it has been disabled.'],
  [0x00041303, 'SCHED_S_TASK_HAS_NOT_RUN', 'The task has not yet run.'],
  [0x00041304, 'SCHED_S_TASK_NO_MORE_RUNS', 'There are no more runs scheduled for this task.'],
  [
    0x00041305,
    'SCHED_S_TASK_NOT_SCHEDULED',
    'One or more of the properties that are needed to run this task on a schedule have not been set.',
  ],
  [0x00041306, 'SCHED_S_TASK_TERMINATED', 'The last run of the task was terminated by the user.'],
  [
    0x00041307,
    'SCHED_S_TASK_NO_VALID_TRIGGERS',
    'Either the task has no triggers or the existing triggers are disabled or not set.',
  ],
  [0x00041308, 'SCHED_S_EVENT_TRIGGER', 'Event triggers do not have set run times.'],
  [0x80041309, 'SCHED_E_TRIGGER_NOT_FOUND', "A task's trigger is not found."],
  [0x8004130a, 'SCHED_E_TASK_NOT_READY', 'One or more of the properties required to run this task have not been set.'],
  [0x8004130b, 'SCHED_E_TASK_NOT_RUNNING', 'There is no running instance of the task.'],
  [0x8004130c, 'SCHED_E_SERVICE_NOT_INSTALLED', 'The Task Scheduler service is not installed on this computer.'],
  [0x8004130d, 'SCHED_E_CANNOT_OPEN_TASK', 'The task object could not be opened.'],
  [0x8004130e, 'SCHED_E_INVALID_TASK', 'The object is either an invalid task object or is not a task object.'],
  [
    0x8004130f,
    'SCHED_E_ACCOUNT_INFORMATION_NOT_SET',
    'No account information could be found in the Task Scheduler security database for the task indicated.',
  ],
  [0x80041310, 'SCHED_E_ACCOUNT_NAME_NOT_FOUND', 'Unable to establish existence of the account specified.'],
  [
    0x80041311,
    'SCHED_E_ACCOUNT_DBASE_CORRUPT',
    'Corruption was detected in the Task Scheduler security database; the database has been reset.',
  ],
  [0x80041312, 'SCHED_E_NO_SECURITY_SERVICES', 'Task Scheduler security services are available only on Windows NT.'],
  [0x80041313, 'SCHED_E_UNKNOWN_OBJECT_VERSION', 'The task object version is either unsupported or invalid.'],
  [
    0x80041314,
    'SCHED_E_UNSUPPORTED_ACCOUNT_OPTION',
    'The task has been configured with an unsupported combination of account settings and run time options.',
  ],
  [0x80041315, 'SCHED_E_SERVICE_NOT_RUNNING', 'The Task Scheduler Service is not running.'],
  [0x80041316, 'SCHED_E_UNEXPECTEDNODE', 'The task XML contains an unexpected node.'],
  [0x80041317, 'SCHED_E_NAMESPACE', 'The task XML contains an element or attribute from an unexpected namespace.'],
  [0x80041318, 'SCHED_E_INVALIDVALUE', 'The task XML contains a value which is incorrectly formatted or out of range.'],
  [0x80041319, 'SCHED_E_MISSINGNODE', 'The task XML is missing a required element or attribute.'],
  [0x8004131a, 'SCHED_E_MALFORMEDXML', 'The task XML is malformed.'],
  [
    0x0004131b,
    'SCHED_S_SOME_TRIGGERS_FAILED',
    'The task is registered, but not all specified triggers will start the task.',
  ],
  [
    0x0004131c,
    'SCHED_S_BATCH_LOGON_PROBLEM',
    'The task is registered, but may fail to start. Batch logon privilege needs to be enabled for the task principal.',
  ],
  [0x8004131d, 'SCHED_E_TOO_MANY_NODES', 'The task XML contains too many nodes of the same type.'],
  [0x8004131e, 'SCHED_E_PAST_END_BOUNDARY', 'The task cannot be started after the trigger end boundary.'],
  [0x8004131f, 'SCHED_E_ALREADY_RUNNING', 'An instance of this task is already running.'],
  [0x80041320, 'SCHED_E_USER_NOT_LOGGED_ON', 'The task will not run because the user is not logged on.'],
  [0x80041321, 'SCHED_E_INVALID_TASK_HASH', 'The task image is corrupt or has been tampered with.'],
  [0x80041322, 'SCHED_E_SERVICE_NOT_AVAILABLE', 'The Task Scheduler service is not available.'],
  [
    0x80041323,
    'SCHED_E_SERVICE_TOO_BUSY',
    'The Task Scheduler service is too busy to handle your request. Please try again later.',
  ],
  [
    0x80041324,
    'SCHED_E_TASK_ATTEMPTED',
    'The Task Scheduler service attempted to run the task, but the task did not run due to one of the constraints in the task definition.',
  ],
  [0x00041325, 'SCHED_S_TASK_QUEUED', 'The Task Scheduler service has asked the task to run.'],
  [0x80041326, 'SCHED_E_TASK_DISABLED', 'The task is disabled.'],
  [
    0x80041327,
    'SCHED_E_TASK_NOT_V1_COMPAT',
    'The task has properties that are not compatible with earlier versions of Windows.',
  ],
  [0x80041328, 'SCHED_E_START_ON_DEMAND', 'The task settings do not allow the task to start on demand.'],
];

const REBOOT = 'Reboot the host (or let Patchline reboot it), then run again.';
const WAIT_INSTALLER =
  'Another installation is running or a restart is pending: wait for the other installation to finish, or reboot the host, then run again.';
const NETWORK =
  'The host could not reach its update server: check DNS, the firewall and the WinHTTP proxy (`netsh winhttp show proxy`; WUA does not use the browser proxy), and that the WSUS or Microsoft Update URLs answer from the host.';
const DISM_REPAIR =
  'Repair the component store: `DISM /Online /Cleanup-Image /RestoreHealth` (add /Source when WSUS cannot supply the files), then `sfc /scannow`, reboot and retry.';

/** What to try, by name. Every key must be a name in one of the tables (a unit test checks). */
const ADVICE_BY_NAME: Readonly<Record<string, string>> = {
  WU_E_INSTALL_NOT_ALLOWED: WAIT_INSTALLER,
  WU_E_OPERATIONINPROGRESS: WAIT_INSTALLER,
  ERROR_INSTALL_ALREADY_RUNNING: WAIT_INSTALLER,
  WU_S_REBOOT_REQUIRED: REBOOT,
  ERROR_SUCCESS_REBOOT_REQUIRED: REBOOT,
  ERROR_FAIL_REBOOT_REQUIRED: REBOOT,
  WU_E_UH_POSTREBOOTSTILLPENDING: REBOOT,
  WU_E_UH_HANDLER_DISABLEDUNTILREBOOT: REBOOT,
  WU_E_REBOOT_IN_PROGRESS: 'The host is restarting: wait until it is back (its boot time changed), then run again.',
  ERROR_SHUTDOWN_IN_PROGRESS:
    'The host is shutting down or restarting: wait until it is back (its boot time changed), then run again.',
  ERROR_SHUTDOWN_IS_SCHEDULED:
    'A restart is already scheduled: let it happen (or cancel it with `shutdown /a`), then run again.',
  WU_E_SERVICE_STOP: 'The Windows Update service or the host was shutting down: run again once the host is up.',
  WU_E_UH_POSTREBOOTUNEXPECTEDSTATE:
    'Reboot once more and scan again; if the update is offered again, read CBS.log and WindowsUpdate.log (Get-WindowsUpdateLog) for the component that failed.',
  WU_E_NO_CONNECTION: NETWORK,
  WU_E_PT_ENDPOINT_UNREACHABLE: NETWORK,
  WU_E_PT_WINHTTP_NAME_NOT_RESOLVED: `${NETWORK} During an offline scan this code means the search was not pointed at the scan package (ServerSelection must be ssOthers=3 with the package's ServiceID), so WUA went online.`,
  ERROR_INTERNET_TIMEOUT: NETWORK,
  ERROR_INTERNET_NAME_NOT_RESOLVED: NETWORK,
  ERROR_INTERNET_CANNOT_CONNECT: NETWORK,
  ERROR_INTERNET_CONNECTION_ABORTED: NETWORK,
  ERROR_INTERNET_SECURE_FAILURE:
    'TLS to the update server failed: check the host clock, its root certificates, and any TLS-inspecting proxy in the way.',
  WU_E_PT_HTTP_STATUS_PROXY_AUTH_REQ:
    'The proxy wants credentials, which SYSTEM cannot give: allow the update URLs through the proxy without authentication, or set a proxy that does not need it (`netsh winhttp set proxy`).',
  WU_E_PT_HTTP_STATUS_DENIED:
    'The update server refused the request (401): check the WSUS URL and the IIS authentication of the WSUS site.',
  WU_E_PT_HTTP_STATUS_FORBIDDEN:
    'The update server or a proxy refused the request (403): check proxy rules and the WSUS site permissions.',
  WU_E_PT_HTTP_STATUS_NOT_FOUND:
    'The update server has no such URL (404): check the WUServer policy value (it should be http(s)://server:8530 or :8531) and that the content exists.',
  WU_E_PT_HTTP_STATUS_SERVICE_UNAVAIL:
    'The WSUS server is overloaded or its IIS application pool (WsusPool) stopped: restart the pool, raise its memory limit, and retry.',
  WU_E_PT_HTTP_STATUS_SERVER_ERROR:
    'The WSUS server failed internally (500): check its event log and the WSUS database, then retry.',
  WU_E_PT_HTTP_STATUS_REQUEST_TIMEOUT:
    'The WSUS server was too slow: retry, and clean it up (decline superseded updates) if it repeats.',
  WU_E_PT_EXCEEDED_MAX_SERVER_TRIPS:
    'The scan needed more server round trips than allowed: run the scan again (it continues where it stopped); on WSUS, decline superseded updates to shrink the metadata.',
  WU_E_PT_SUS_SERVER_NOT_SET:
    'managedServer was asked for but no WSUS server is configured: set the WUServer policy, or scan with windowsUpdate, microsoftUpdate or offline.',
  WU_E_WU_DISABLED:
    'Group Policy forbids unmanaged servers ("Do not connect to any Windows Update Internet locations"): scan against WSUS (managedServer) or offline, or change the policy.',
  WU_E_USER_ACCESS_DISABLED:
    'Group Policy blocks access to Windows Update features: scan against WSUS (managedServer) or offline, or change the policy.',
  WU_E_DM_INCORRECTFILEHASH:
    'A downloaded file did not match its digest: a proxy, TLS inspection or a bad WSUS/cache copy altered it. Clear %windir%\\SoftwareDistribution\\Download (stop wuauserv first) and download again; check the proxy.',
  WU_E_DM_NOTDOWNLOADED: 'Download the update before installing it (or let Patchline download it first).',
  WU_E_DM_FAILTOCONNECTTOBITS:
    'BITS is not running or disabled: set the BITS service to Manual and start it, then retry.',
  WU_E_UH_NEW_SERVICING_STACK_REQUIRED:
    'Install the latest servicing stack update (SSU) for this Windows version first, then retry.',
  CBS_E_NEW_SERVICING_STACK_REQUIRED:
    'Install the latest servicing stack update (SSU) for this Windows version first, then retry.',
  WU_E_UH_INSTALLERHUNG:
    'The installer ran past its time limit: reboot the host and retry; if it repeats, read CBS.log or the installer log for the step that hangs.',
  WU_E_UH_INSTALLERFAILURE:
    "The update's own installer failed: read %windir%\\Logs\\CBS\\CBS.log (MSU/CAB packages) or the MSI log, fix the cause, and retry.",
  WU_E_UH_DOESNOTSUPPORTACTION:
    'This update cannot be installed silently: install it interactively on the host, or exclude it.',
  WU_E_ALL_UPDATES_FAILED: "Every update in the batch failed: look at each update's own result code.",
  WU_E_NO_UPDATE: 'There was nothing to download or install: scan again.',
  WU_E_NOT_APPLICABLE:
    'The update no longer applies (superseded, already installed or not for this system): scan again.',
  WU_E_INVALID_CRITERIA:
    'The search criteria are not valid WUA syntax (`or` is allowed only at the top level): fix the criteria; if Patchline built them, report a bug.',
  WU_E_PER_MACHINE_UPDATE_ACCESS_DENIED: 'Run as SYSTEM or as a member of the local Administrators group.',
  WU_E_NO_INTERACTIVE_USER:
    'The update needs an interactive user, which a RunAs/secondary logon does not have: run the agent as SYSTEM through the Task Scheduler.',
  WU_E_OL_INVALID_SCANFILE:
    "The offline scan package is damaged or not signed by Microsoft: sync the catalog again (a fresh wsusscn2.cab) and copy it to the host's local disk.",
  WU_E_OL_NEWCLIENT_REQUIRED:
    'The Windows Update Agent is too old for this wsusscn2.cab (SHA-2 signed since 2020): install the current servicing stack and WUA updates first.',
  WU_E_XML_INVALID:
    'Update metadata is damaged: for an offline scan sync the catalog again; otherwise rename %windir%\\SoftwareDistribution (stop wuauserv first) and scan again.',
  WU_E_XML_MISSINGDATA:
    'Update metadata is incomplete: for an offline scan sync the catalog again; otherwise rename %windir%\\SoftwareDistribution (stop wuauserv first) and scan again.',
  E_ACCESSDENIED:
    "Run the work locally as SYSTEM: Patchline's connector starts its agent through the target's Task Scheduler for this reason, so never call WUA from a WinRM or SSH session yourself. Run locally, the account must be a local administrator; an offline scan file on a UNC path is also denied (copy it to a local disk).",
  RPC_S_SERVER_UNAVAILABLE:
    'The host or its RPC endpoint is unreachable (TCP 135 and the dynamic RPC ports): check that the host is up and the firewall allows RPC; Patchline itself does not need DCOM to the host.',
  RPC_S_CALL_FAILED:
    'The Windows Update service (or another COM server) stopped in the middle of a call, often during a WUA self-update, a crash or a shutdown: run again; if it repeats, restart wuauserv and read the System event log.',
  ERROR_SERVICE_DISABLED:
    'The Windows Update (wuauserv) or BITS service is disabled: set it to Manual, start it, and retry.',
  CO_E_SERVER_EXEC_FAILURE:
    'The Windows Update service could not start: check that wuauserv is not disabled and read the System event log.',
  ERROR_DISK_FULL:
    'Free space on the system drive (cumulative updates need several GB in SoftwareDistribution and WinSxS): run Disk Cleanup or `DISM /Online /Cleanup-Image /StartComponentCleanup`, then retry.',
  ERROR_HANDLE_DISK_FULL: 'Free space on the system drive, then retry.',
  E_OUTOFMEMORY:
    'The host ran out of memory; offline scans of wsusscn2.cab need a lot: close other work or add memory, then retry.',
  ERROR_INSTALL_FAILURE:
    'A Windows Installer (MSI) update failed, often a .NET Framework update: read the MSI log under %windir%\\Temp, repair .NET, and retry.',
  CBS_E_INSTALLERS_FAILED:
    'Servicing failed; often the System Reserved/EFI partition is too small or a .NET/CBS component failed — check CBS.log (%windir%\\Logs\\CBS\\CBS.log).',
  CBS_E_SOURCE_MISSING: DISM_REPAIR,
  CBS_E_STORE_CORRUPTION: DISM_REPAIR,
  ERROR_SXS_COMPONENT_STORE_CORRUPT: DISM_REPAIR,
  ERROR_SXS_ASSEMBLY_MISSING: DISM_REPAIR,
  ERROR_FILE_CORRUPT: DISM_REPAIR,
  ERROR_SHARING_VIOLATION:
    'Another program holds the file open, often antivirus: exclude %windir%\\SoftwareDistribution from real-time scanning and retry.',
  E_FAIL: 'No detail was given: read WindowsUpdate.log (Get-WindowsUpdateLog) and CBS.log on the host.',
  SCHED_S_TASK_QUEUED:
    'The task has been asked to run but has not started yet; if it stays queued, no logon session could start it (check the task\'s account and "Run whether user is logged on or not").',
  SCHED_E_SERVICE_NOT_RUNNING: 'Start the Task Scheduler service (Schedule) on the host.',
  SCHED_E_TASK_ATTEMPTED:
    "A condition of the task stopped it (on batteries, idle, network): Patchline's tasks clear these; check the task definition.",
  SCHED_E_ALREADY_RUNNING: 'An earlier run is still going: wait for it or stop it, then run again.',
  SCHED_S_BATCH_LOGON_PROBLEM: 'Grant the task\'s account "Log on as a batch job", or run the task as SYSTEM.',
};

/** HRESULT facility numbers (winerror.h) for codes in no table. */
const FACILITIES: Readonly<Record<number, string>> = {
  0: 'NULL',
  1: 'RPC',
  2: 'DISPATCH',
  3: 'STORAGE',
  4: 'ITF',
  7: 'WIN32',
  8: 'WINDOWS',
  9: 'SECURITY',
  10: 'CONTROL',
  11: 'CERT',
  12: 'INTERNET',
  15: 'SETUPAPI (CBS servicing)',
  16: 'SCARD',
  17: 'COMPLUS',
  19: 'URT (.NET)',
  23: 'SXS',
  25: 'HTTP',
  32: 'BACKGROUNDCOPY (BITS)',
  34: 'STATE_MANAGEMENT',
  36: 'WINDOWSUPDATE',
  48: 'PLA',
  49: 'FVE (BitLocker)',
  50: 'FWP',
  51: 'WINRM',
  80: 'WINDOWS_DEFENDER',
  208: 'DELIVERY_OPTIMIZATION',
};

/** Windows Update components by the 0x8024X000 block, for WUA codes missing from the table. */
const WUA_COMPONENTS: readonly string[] = [
  'general',
  'Windows Installer handler',
  'update handler',
  'Automatic Updates user interface',
  'protocol talker (network and server)',
  'redirector and service information',
  'download manager',
  'metadata and offline scan',
  'data store',
  'inventory',
  'Automatic Updates',
  'trust and service locator',
  'driver utility',
  'setup and self-update',
  'expression evaluator',
  'reporter',
];

const WIN32_FACILITY = 7;
const WINDOWSUPDATE_FACILITY = 0x24;
/** WinHTTP/WinINet error numbers (12001–12999) arrive as Win32 errors. */
const WINHTTP_FIRST = 12001;
const WINHTTP_LAST = 12999;

const BY_VALUE: ReadonlyMap<number, Row> = new Map(
  [...COMMON_CODES, ...WUA_CODES].map((row) => [row[0], row] as const),
);
const ALT_VALUES: ReadonlyMap<number, number> = new Map(
  WUA_ALT_VALUES.map(([alt, canonical]) => [alt, canonical] as const),
);
const ALT_NAMES: ReadonlyMap<number, string> = new Map(WUA_ALT_NAMES.map(([value, name]) => [value, name] as const));

const BY_NAME: ReadonlyMap<string, number> = new Map(
  [...COMMON_CODES, ...WUA_CODES, ...WUA_ALT_NAMES.map(([value, name]) => [value, name, ''] as const)].map(
    ([value, name]) => [name, value] as const,
  ),
);

/** The names advice is written for; exported for the unit test that checks none is misspelt. */
export const ADVISED_NAMES: readonly string[] = Object.keys(ADVICE_BY_NAME);

/**
 * The value of a named code, in protocol form, or null for a name in no table.
 *
 * @example hresultByName('WU_E_INSTALL_NOT_ALLOWED') // '0x80240016'
 */
export function hresultByName(name: string): string | null {
  const value = BY_NAME.get(name.trim().toUpperCase());
  return value === undefined ? null : hex8(value);
}

/**
 * Reads an HRESULT given as a number (signed, as .NET's Exception.HResult, or unsigned) or as text
 * ("0x80240016", "80240016", "-2145124330", "2149842966"). Returns the unsigned 32-bit value, or null.
 */
export function parseHResult(code: string | number): number | null {
  if (typeof code === 'number') {
    return Number.isInteger(code) && code >= -0x80000000 && code <= 0xffffffff ? code >>> 0 : null;
  }
  const text = code.trim();
  if (/^0x[0-9a-f]{1,8}$/i.test(text)) return Number.parseInt(text.slice(2), 16) >>> 0;
  // Eight digits without 0x are hex as Windows prints them ("80240016"), never a decimal number.
  if (/^[0-9a-f]{8}$/i.test(text)) return Number.parseInt(text, 16) >>> 0;
  if (/^-?\d{1,10}$/.test(text)) return parseHResult(Number(text));
  return null;
}

const hex8 = (n: number): string => `0x${n.toString(16).toUpperCase().padStart(8, '0')}`;
const stripPeriod = (s: string): string => s.trim().replace(/\.$/, '');

/**
 * Describes any HRESULT. Throws a usage error (HRESULT_INVALID) for text that is not one.
 *
 * @example describeHResult('0x80240016')
 *   // { hresult: '0x80240016', name: 'WU_E_INSTALL_NOT_ALLOWED', meaning: 'Operation tried to install …', advice: 'Another installation …' }
 * @example describeHResult(-2147024891).name // 'E_ACCESSDENIED'
 */
export function describeHResult(code: string | number): HResultDescription {
  const parsed = parseHResult(code);
  if (parsed === null) {
    throw usageError(
      'HRESULT_INVALID',
      `"${String(code)}" is not an HRESULT. Give it as 0x followed by 8 hex digits (0x80240016) or as a decimal number (-2145124330).`,
    );
  }
  const value = ALT_VALUES.get(parsed) ?? parsed;
  const row = BY_VALUE.get(value);
  if (!row) return { hresult: hex8(parsed), name: null, meaning: decodeBits(parsed), advice: adviceFromBits(parsed) };
  const [, name, message] = row;
  const older = ALT_NAMES.get(value);
  const meaning = older ? `${stripPeriod(message)} (older SDKs call this value ${older})` : stripPeriod(message);
  return { hresult: hex8(parsed), name, meaning, advice: ADVICE_BY_NAME[name] ?? null };
}

/**
 * One line for logs and reports: "0x80240016 WU_E_INSTALL_NOT_ALLOWED: <meaning>. <what to try>".
 * Text that is not an HRESULT is returned as given, so a caller can always use this on a provider's value.
 */
export function formatHResultForUser(code: string | number): string {
  if (parseHResult(code) === null) return `${String(code)} (not an HRESULT)`;
  const d = describeHResult(code);
  // A decoded unknown code's meaning already starts with the code ("0x80070426 is a Win32 error …").
  const text = d.name
    ? `${d.hresult} ${d.name}: ${d.meaning}`
    : d.meaning.startsWith(d.hresult)
      ? d.meaning
      : `${d.hresult}: ${d.meaning}`;
  return d.advice ? `${text}. ${d.advice}` : `${text}.`;
}

/** Severity, facility and code of an HRESULT in no table, in words. */
function decodeBits(n: number): string {
  const failed = n >>> 31 === 1;
  const facility = (n >>> 16) & 0x7ff;
  const low = n & 0xffff;
  if ((n & 0x10000000) !== 0) {
    return `${hex8(n)} is an NTSTATUS ${hex8((n & ~0x10000000) >>> 0)} wrapped as an HRESULT (HRESULT_FROM_NT)`;
  }
  if (facility === WIN32_FACILITY && failed) {
    const kind = low >= WINHTTP_FIRST && low <= WINHTTP_LAST ? ', a WinHTTP/WinINet network error' : '';
    return `${hex8(n)} is a Win32 error ${low} (0x${low.toString(16).toUpperCase()})${kind} wrapped as an HRESULT; run "net helpmsg ${low}" on Windows for its text`;
  }
  if (facility === WINDOWSUPDATE_FACILITY) {
    const component = WUA_COMPONENTS[(low >>> 12) & 0xf] ?? 'general';
    return `${hex8(n)} is an unlisted Windows Update Agent ${failed ? 'error' : 'success code'} (component: ${component}, code 0x${low.toString(16).toUpperCase().padStart(4, '0')})`;
  }
  const facilityName = FACILITIES[facility] ?? 'unknown';
  return `${hex8(n)} is an unlisted ${failed ? 'error' : 'success code'}: facility ${facilityName} (${facility}), code ${low} (0x${low.toString(16).toUpperCase().padStart(4, '0')})`;
}

function adviceFromBits(n: number): string | null {
  const facility = (n >>> 16) & 0x7ff;
  const low = n & 0xffff;
  if (facility === WIN32_FACILITY && low >= WINHTTP_FIRST && low <= WINHTTP_LAST) return NETWORK;
  if (facility === WINDOWSUPDATE_FACILITY && n >>> 31 === 1)
    return 'Read WindowsUpdate.log on the host (Get-WindowsUpdateLog) around the time of the failure.';
  return null;
}
