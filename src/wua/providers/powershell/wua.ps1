<#
  Patchline WUA provider for Windows: translates between the Windows Update Agent COM API and
  Patchline's JSON-lines protocol (src/wua/protocol.ts). Nothing else: no filtering, no policy,
  no retries, no reboots. Those live in the agent, above the protocol, where they are tested.

  Run as SYSTEM (or a locally logged-on administrator), never from a WinRM/SSH session:
    powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File wua.ps1

  stdin : one request object per line (UTF-8).
  stdout: one event object per line (UTF-8, no BOM, flushed per line): a hello first, then
          progress/warning events and exactly one result per request. Nothing else is ever
          written to stdout; failures become results or warnings.

  STATUS: written from Microsoft's documentation and the protocol; it has NOT been run on Windows.
  See README.md next to this file.
#>
Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'
# The console host writes these streams to stdout, which belongs to the protocol.
$ProgressPreference = 'SilentlyContinue'
$WarningPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
$InformationPreference = 'SilentlyContinue'

$ProviderVersion = '0.1.0'
$ProtocolVersion = 1
$ClientApplicationId = 'Patchline'
$MicrosoftUpdateServiceId = '7971f918-a847-4430-9279-4a52d1efe18d'
$OfflineServiceName = 'Patchline offline scan'
# asfAllowOnlineRegistration only, as PSWindowsUpdate does. Never asfRegisterServiceWithAU (4):
# it makes Microsoft Update the Automatic Updates service of the machine, a permanent change to
# how the host patches itself that nobody asked Patchline for.
$AddServiceFlags = 2
# 0, not usoNonVolatileService (1): a volatile registration is removed by WUA when the provider
# releases it, so a provider that crashes (or is killed) mid-scan leaves nothing registered.
# Removed explicitly after every scan too, and stale ones of older versions at start.
$ScanPackageServiceOption = 0
# How often a running job is polled for progress and completion; also how long a read of stdin
# waits while a job runs, so an abort is seen within this time.
$PollIntervalMs = 500
# How long an idle read of stdin waits before the loop checks again whether stdin was closed.
$IdleReadTimeoutMs = 5000
$DefaultHistoryLimit = 50
# A failing GetProgress is polled every $PollIntervalMs: the same warning again only after this.
$ProgressWarningQuietMs = 60000
# OperationResultCode (wuapi.h) by value.
$ResultCodes = @('notStarted', 'inProgress', 'succeeded', 'succeededWithErrors', 'failed', 'aborted')
$RebootBehaviors = @('never', 'always', 'canRequest')
$Impacts = @('normal', 'minor', 'exclusive')
$Severities = @('Critical', 'Important', 'Moderate', 'Low')
$CategoryTypes = @('Company', 'ProductFamily', 'Product', 'UpdateClassification')
# A search by UpdateID found nothing: superseded, already installed, or unknown to the server.
$HResultNotApplicable = '0x80240017'
# IUpdateInstaller.IsBusy: WUA would refuse with WU_E_INSTALL_NOT_ALLOWED; say so up front.
$HResultInstallNotAllowed = '0x80240016'
$HResultFileNotFound = '0x80070002'
$HResultInvalidArg = '0x80070057'
# E_NOTIMPL: a request type this version of the script does not know (an older wua.ps1).
$HResultNotImplemented = '0x80004001'
# WU_E_NO_INTERACTIVE_USER: what WUA answers, as SYSTEM, for an update that can ask for input.
$HResultNoInteractiveUser = '0x80240020'
# The fields each request type must carry besides id and type (src/wua/protocol.ts); a request
# without one is answered failed/E_INVALIDARG instead of throwing under StrictMode.
$RequiredFields = @{
  search       = @('criteria', 'serverSelection')
  download     = @('updateIds')
  install      = @('updateIds')
  rebootStatus = @()
  history      = @()
  hide         = @('updateIds')
  unhide       = @('updateIds')
  copyToCache  = @('updateId', 'files')
  abort        = @('targetId')
}

# ── helpers compiled once: COM callback objects, a stdin reader thread, keep-awake ──────────────
# Why C#: BeginSearch/BeginDownload/BeginInstall reject null callbacks, and PowerShell script
# blocks cannot safely run on the threads WUA calls back on. The callbacks below therefore do
# nothing; the main loop polls the job (IsCompleted, GetProgress()) instead, so every COM call and
# every write to stdout happens on this one thread. The reader thread lets the loop keep reading
# stdin (for abort) while a job runs. C# 5 only: Windows PowerShell compiles with the .NET
# Framework's csc.
Add-Type -TypeDefinition @'
using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Patchline.Wua
{
    [ComImport, Guid("88AEE058-D4B0-4725-A2F1-814A67AE964C"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    public interface ISearchCompletedCallback
    {
        void Invoke([MarshalAs(UnmanagedType.IUnknown)] object searchJob, [MarshalAs(UnmanagedType.IUnknown)] object callbackArgs);
    }

    [ComImport, Guid("8C3F1CDD-6173-4591-AEBD-A56A53CA77C1"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    public interface IDownloadProgressChangedCallback
    {
        void Invoke([MarshalAs(UnmanagedType.IUnknown)] object downloadJob, [MarshalAs(UnmanagedType.IUnknown)] object callbackArgs);
    }

    [ComImport, Guid("77254866-9F5B-4C8E-B9E2-C77A8530D64B"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    public interface IDownloadCompletedCallback
    {
        void Invoke([MarshalAs(UnmanagedType.IUnknown)] object downloadJob, [MarshalAs(UnmanagedType.IUnknown)] object callbackArgs);
    }

    [ComImport, Guid("E01402D5-F8DA-43BA-A012-38894BD048F1"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    public interface IInstallationProgressChangedCallback
    {
        void Invoke([MarshalAs(UnmanagedType.IUnknown)] object installationJob, [MarshalAs(UnmanagedType.IUnknown)] object callbackArgs);
    }

    [ComImport, Guid("45F4F6F3-D602-4F98-9A8A-3EFA152AD2D3"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    public interface IInstallationCompletedCallback
    {
        void Invoke([MarshalAs(UnmanagedType.IUnknown)] object installationJob, [MarshalAs(UnmanagedType.IUnknown)] object callbackArgs);
    }

    /// <summary>Satisfies WUA's non-null callback parameters; counts calls, nothing more (the loop polls).</summary>
    [ComVisible(true), ClassInterface(ClassInterfaceType.None)]
    public sealed class JobCallback : ISearchCompletedCallback, IDownloadProgressChangedCallback, IDownloadCompletedCallback,
        IInstallationProgressChangedCallback, IInstallationCompletedCallback
    {
        private int calls;
        public int Calls { get { return Thread.VolatileRead(ref calls); } }
        public void Invoke(object job, object callbackArgs) { Interlocked.Increment(ref calls); }
    }

    /// <summary>Reads stdin lines on a background thread so the main loop can wait with a timeout.</summary>
    public sealed class LineReader
    {
        private readonly BlockingCollection<string> lines = new BlockingCollection<string>();
        private string readError;

        public LineReader(Stream input)
        {
            StreamReader reader = new StreamReader(input, new UTF8Encoding(false));
            Thread thread = new Thread(delegate ()
            {
                try
                {
                    string line;
                    while ((line = reader.ReadLine()) != null) lines.Add(line);
                }
                catch (IOException e)
                {
                    readError = e.Message;
                }
                finally
                {
                    lines.CompleteAdding();
                }
            });
            thread.IsBackground = true;
            thread.Start();
        }

        /// <summary>
        /// The next line, or null when none arrived within timeoutMs. Always waits the full timeout
        /// when no line comes, also once stdin is closed: TryTake returns at once on a completed
        /// collection, and a caller polling a running job with this wait would otherwise spin.
        /// </summary>
        public string Next(int timeoutMs)
        {
            string line;
            Stopwatch waited = Stopwatch.StartNew();
            if (lines.TryTake(out line, timeoutMs)) return line;
            long left = timeoutMs - waited.ElapsedMilliseconds;
            if (left > 0) Thread.Sleep((int)left);
            return null;
        }

        /// <summary>stdin was closed and every line has been taken.</summary>
        public bool IsFinished { get { return lines.IsCompleted; } }
        public string ReadError { get { return readError; } }
    }

    /// <summary>
    /// Rate-limits a warning that repeats on every poll (a failing GetProgress is polled every
    /// 500 ms): the first one is reported, the same text again only after quietMs, a different
    /// text at once. Admit returns how many were held back since the last report (0 or more) when
    /// this one is to be reported, -1 when it is held back.
    /// </summary>
    public sealed class WarningGate
    {
        private readonly long quietMs;
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private string lastText;
        private long lastReportedAt;
        private int heldBack;

        public WarningGate(long quietMs) { this.quietMs = quietMs; }

        public int Admit(string text) { return Admit(text, clock.ElapsedMilliseconds); }

        public int Admit(string text, long nowMs)
        {
            if (lastText != null && text == lastText && nowMs - lastReportedAt < quietMs)
            {
                heldBack++;
                return -1;
            }
            int held = heldBack;
            heldBack = 0;
            lastText = text;
            lastReportedAt = nowMs;
            return held;
        }
    }

    /// <summary>
    /// The overall OperationResultCode of a request over several updates, where WUA saw only some
    /// of them. Pure, so the rules are unit-run under Mono (test/powershell-contract.test.ts).
    /// </summary>
    public static class Outcome
    {
        /// <summary>
        /// done: updates WUA handled or that needed nothing (already downloaded); notDone: updates
        /// Patchline could not hand to WUA (not found, skipped). Nothing done is a failure whatever
        /// WUA said; a WUA success that left some out is succeededWithErrors, as WUA's own is when
        /// one of its updates fails.
        /// </summary>
        public static string Merge(string wuaCode, int done, int notDone)
        {
            if (done == 0) return "failed";
            if (notDone > 0 && wuaCode == "succeeded") return "succeededWithErrors";
            return wuaCode;
        }

        /// <summary>The code of a request answered per update without WUA's help (hide, unhide).</summary>
        public static string OfCounts(int succeeded, int failed)
        {
            if (failed == 0) return "succeeded";
            return succeeded == 0 ? "failed" : "succeededWithErrors";
        }
    }

    /// <summary>SetThreadExecutionState: keep the host from sleeping while a job runs.</summary>
    public static class KeepAwake
    {
        private const uint ES_CONTINUOUS = 0x80000000;
        private const uint ES_SYSTEM_REQUIRED = 0x00000001;

        [DllImport("kernel32.dll")]
        private static extern uint SetThreadExecutionState(uint flags);

        public static void Begin() { SetThreadExecutionState(ES_CONTINUOUS | ES_SYSTEM_REQUIRED); }
        public static void End() { SetThreadExecutionState(ES_CONTINUOUS); }
    }
}
'@

# Windows PowerShell 5.1 serialises some arrays as {"value":[…],"Count":n} because of this type
# data; without it arrays are plain JSON arrays.
Remove-TypeData -TypeName System.Array -ErrorAction SilentlyContinue

$Utf8NoBom = New-Object System.Text.UTF8Encoding($false)
$Out = New-Object System.IO.StreamWriter([Console]::OpenStandardOutput(), $Utf8NoBom)
$Out.AutoFlush = $true
$Out.NewLine = "`n"
$In = New-Object Patchline.Wua.LineReader([Console]::OpenStandardInput())

# ── output ──────────────────────────────────────────────────────────────────────────────────────

# ($Event is an automatic variable in PowerShell, hence $Payload.)
function Send-Event($Payload) {
  $Out.WriteLine((ConvertTo-Json -InputObject $Payload -Compress -Depth 12))
}

function Format-HResult($Value) {
  if ($null -eq $Value) { return $null }
  $n = [int64]$Value
  if ($n -eq 0) { return $null }
  if ($n -lt 0) { $n += 4294967296 }
  return ('0x{0:X8}' -f $n)
}

function Get-ResultCodeName($Value) {
  $i = [int]$Value
  if ($i -ge 0 -and $i -lt $ResultCodes.Count) { return $ResultCodes[$i] }
  return 'failed'
}

function Send-Result($Request, [string]$ResultCode, $HResult, $Data, [string]$Message) {
  $payload = [ordered]@{ type = 'result'; requestId = [string]$Request.id; request = [string]$Request.type; resultCode = $ResultCode; hresult = $HResult }
  if ($Message) { $payload.message = $Message }
  if ($null -ne $Data) { $payload.data = $Data }
  Send-Event $payload
}

function Send-Warning($RequestId, $HResult, [string]$Message) {
  $payload = [ordered]@{ type = 'warning' }
  if ($null -ne $RequestId) { $payload.requestId = [string]$RequestId }
  $payload.hresult = $HResult
  $payload.message = $Message
  Send-Event $payload
}

function Send-Progress($RequestId, [string]$Phase, $UpdateId, $Percent, $UpdatePercent, $Bytes, $TotalBytes) {
  $payload = [ordered]@{ type = 'progress'; requestId = [string]$RequestId; phase = $Phase; updateId = $UpdateId; percent = [int]$Percent }
  if ($null -ne $UpdatePercent) { $payload.updatePercent = [int]$UpdatePercent }
  if ($null -ne $Bytes) { $payload.bytes = [double]$Bytes }
  if ($null -ne $TotalBytes) { $payload.totalBytes = [double]$TotalBytes }
  Send-Event $payload
}

# The HRESULT of a COM failure: PowerShell wraps the COMException in a MethodInvocationException.
function Get-ExceptionHResult($Exception) {
  $e = $Exception
  while ($null -ne $e) {
    if ($e -is [System.Runtime.InteropServices.COMException]) { return (Format-HResult $e.HResult) }
    if ($null -eq $e.InnerException) { return (Format-HResult $e.HResult) }
    $e = $e.InnerException
  }
  return $null
}

function Get-ExceptionMessage($Exception) {
  $e = $Exception
  while ($null -ne $e.InnerException) { $e = $e.InnerException }
  return ([string]$e.Message).Trim()
}

# A field of a parsed request, or $null when it is absent: under StrictMode reading a missing
# property throws, and a request is input from another process, so it is never trusted to be whole.
function Get-Field($Object, [string]$Name) {
  if ($null -eq $Object) { return $null }
  $property = $Object.PSObject.Properties[$Name]
  if ($null -eq $property) { return $null }
  return $property.Value
}

# What a request will be answered with. Built first and sent last, after the job is cleaned up, so
# nothing that happens while cleaning up can come after (or instead of) the one result.
function New-Answer([string]$ResultCode, $HResult, $Data, [string]$Message) {
  return @{ code = $ResultCode; hresult = $HResult; data = $Data; message = $Message }
}

function Send-Answer($Request, $Answer) {
  Send-Result $Request $Answer.code $Answer.hresult $Answer.data $Answer.message
}

# ── IUpdate → update record ─────────────────────────────────────────────────────────────────────

function Format-UtcTime($Value) {
  if ($null -eq $Value) { return '' }
  # WUA returns UTC times as DATE values with no kind; they are UTC already (LastDeploymentChangeTime, history Date).
  return ([datetime]$Value).ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

# Writes the URLs to the pipeline one by one; callers collect them with @(…).
# (foreach over a COM collection enumerates it; over $null it does nothing, unlike @($null).)
function Get-DownloadUrls($Update) {
  foreach ($content in $Update.DownloadContents) { [string]$content.DownloadUrl }
  # For a bundle the payloads belong to the bundled updates (IUpdate remarks).
  foreach ($child in $Update.BundledUpdates) {
    foreach ($content in $child.DownloadContents) { [string]$content.DownloadUrl }
  }
}

function ConvertTo-UpdateRecord($Update) {
  $categories = @(foreach ($c in $Update.Categories) {
      if ($CategoryTypes -contains [string]$c.Type) {
        [ordered]@{ id = ([string]$c.CategoryID).ToLowerInvariant(); name = [string]$c.Name; type = [string]$c.Type }
      }
    })
  $classification = @($categories | Where-Object { $_.type -eq 'UpdateClassification' } | ForEach-Object { $_.name })
  $behavior = $Update.InstallationBehavior
  $severity = [string]$Update.MsrcSeverity
  $supportUrl = [string]$Update.SupportUrl
  return [ordered]@{
    updateId                 = ([string]$Update.Identity.UpdateID).ToLowerInvariant()
    revisionNumber           = [int]$Update.Identity.RevisionNumber
    title                    = [string]$Update.Title
    kbs                      = @(foreach ($kb in $Update.KBArticleIDs) { ([string]$kb) -replace '^(?i)kb', '' })
    msrcSeverity             = $(if ($Severities -contains $severity) { $severity } else { $null })
    classification           = $(if ($classification.Count -gt 0) { $classification[0] } else { '' })
    products                 = @($categories | Where-Object { $_.type -eq 'Product' } | ForEach-Object { $_.name })
    categories               = $categories
    isDownloaded             = [bool]$Update.IsDownloaded
    isHidden                 = [bool]$Update.IsHidden
    isMandatory              = [bool]$Update.IsMandatory
    browseOnly               = [bool]$Update.BrowseOnly
    type                     = $(if ([int]$Update.Type -eq 2) { 'driver' } else { 'software' })
    rebootBehavior           = $RebootBehaviors[[int]$behavior.RebootBehavior]
    impact                   = $Impacts[[int]$behavior.Impact]
    eulaAccepted             = [bool]$Update.EulaAccepted
    supersededUpdateIds      = @(foreach ($id in $Update.SupersededUpdateIDs) { ([string]$id).ToLowerInvariant() })
    maxDownloadSize          = [double]$Update.MaxDownloadSize
    lastDeploymentChangeTime = Format-UtcTime $Update.LastDeploymentChangeTime
    supportUrl               = $(if ($supportUrl) { $supportUrl } else { $null })
    downloadUrls             = @(Get-DownloadUrls $Update)
  }
}

# ── session state ───────────────────────────────────────────────────────────────────────────────

$Session = New-Object -ComObject Microsoft.Update.Session
$Session.ClientApplicationID = $ClientApplicationId
$ServiceManager = New-Object -ComObject Microsoft.Update.ServiceManager
# IUpdate objects from the last searches, by update id: download/install/hide name updates by id.
$KnownUpdates = @{}
# The server selection of the last online search, reused to look up ids not seen yet.
$LastOnlineSelection = 'default'

function Set-ServerSelection($Searcher, [string]$Selection) {
  switch ($Selection) {
    'default' { $Searcher.ServerSelection = 0 }
    'managedServer' { $Searcher.ServerSelection = 1 }
    'windowsUpdate' { $Searcher.ServerSelection = 2 }
    'microsoftUpdate' {
      $registered = @($ServiceManager.Services | Where-Object { ([string]$_.ServiceID) -eq $MicrosoftUpdateServiceId })
      if ($registered.Count -eq 0) { [void]$ServiceManager.AddService2($MicrosoftUpdateServiceId, $AddServiceFlags, '') }
      $Searcher.ServerSelection = 3
      $Searcher.ServiceID = $MicrosoftUpdateServiceId
    }
    default { throw (New-Object System.ArgumentException("unknown serverSelection '$Selection'")) }
  }
}

# Updates by id: from earlier searches, else a search by UpdateID on the last online server.
function Find-Updates($Ids, $RequestId) {
  # Ordered: WUA gets (and reports) the updates in the order they were asked for.
  $found = [ordered]@{}
  foreach ($id in @($Ids)) {
    $key = ([string]$id).ToLowerInvariant()
    if ($KnownUpdates.ContainsKey($key)) { $found[$key] = $KnownUpdates[$key]; continue }
    $searcher = $Session.CreateUpdateSearcher()
    Set-ServerSelection $searcher $LastOnlineSelection
    $result = $searcher.Search("UpdateID='$key'")
    if ($result.Updates.Count -gt 0) {
      $found[$key] = $result.Updates.Item(0)
      $KnownUpdates[$key] = $found[$key]
    } else {
      Send-Warning $RequestId $HResultNotApplicable "update $key was not found by a search (superseded, installed, or unknown to the server)"
    }
  }
  return $found
}

function New-UpdateCollection($Updates) {
  $collection = New-Object -ComObject Microsoft.Update.UpdateColl
  foreach ($u in $Updates) { [void]$collection.Add($u) }
  return , $collection
}

# ── asynchronous requests: search, download, install ───────────────────────────────────────────
# Each Start-* begins a WUA job and returns a state object (or answers at once and returns $null);
# Get-*Answer ends the job and says what to answer; Complete-Running cleans up and answers.

function Start-Search($Request) {
  $state = @{ request = $Request; kind = 'search'; job = $null; searcher = $null; callback = $null; scanService = $null; scanServiceId = $null; abortRequested = $false; lastProgress = ''; warnings = $null }
  # First COM call: over a remote logon token WUA refuses here (E_ACCESSDENIED), before any progress.
  $searcher = $Session.CreateUpdateSearcher()
  $searcher.ClientApplicationID = $ClientApplicationId
  if ([string]$Request.serverSelection -eq 'offline') {
    $path = [string](Get-Field $Request 'offlineCabPath')
    if (-not $path) { Send-Result $Request 'failed' $HResultInvalidArg $null 'offline search without offlineCabPath'; return $null }
    if ($path.StartsWith('\\')) { Send-Warning $Request.id $null "offline scan file is on a UNC path ($path): WUA is often denied access to it; copy it to a local disk" }
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { Send-Result $Request 'failed' $HResultFileNotFound $null "offline scan file not found: $path"; return $null }
    # The state keeps the IUpdateService: the volatile registration lives as long as this reference.
    $state.scanService = $ServiceManager.AddScanPackageService($OfflineServiceName, $path, $ScanPackageServiceOption)
    $state.scanServiceId = [string]$state.scanService.ServiceID
    # ssOthers + the package's ServiceID; without them WUA goes online (0x8024402C offline).
    $searcher.ServerSelection = 3
    $searcher.ServiceID = $state.scanServiceId
  } else {
    Set-ServerSelection $searcher ([string]$Request.serverSelection)
  }
  if ([string]$Request.criteria -match '(?i)IsHidden\s*=\s*1') { $searcher.IncludePotentiallySupersededUpdates = $true }
  $state.searcher = $searcher
  $state.callback = [Patchline.Wua.JobCallback]::new()
  Send-Progress $Request.id 'search' $null 0 $null $null $null
  try {
    $state.job = $searcher.BeginSearch([string]$Request.criteria, $state.callback, $null)
  } catch {
    Remove-ScanService $state
    throw
  }
  return $state
}

# Never throws: a registration that cannot be removed is a warning (it is volatile, WUA drops it
# when the provider exits).
function Remove-ScanService($State) {
  if (-not $State.scanServiceId) { return }
  try { $ServiceManager.RemoveService($State.scanServiceId) }
  catch { Send-Warning $State.request.id (Get-ExceptionHResult $_.Exception) "could not remove the offline scan service $($State.scanServiceId): $(Get-ExceptionMessage $_.Exception)" }
  $State.scanServiceId = $null
  $State.scanService = $null
}

function Get-SearchAnswer($State) {
  $request = $State.request
  $result = $State.searcher.EndSearch($State.job)
  $code = Get-ResultCodeName $result.ResultCode
  foreach ($w in $result.Warnings) { Send-Warning $request.id (Format-HResult $w.HResult) ("search warning (context $([int]$w.Context)): " + [string]$w.Message) }
  $records = New-Object System.Collections.ArrayList
  foreach ($u in $result.Updates) {
    try {
      $record = ConvertTo-UpdateRecord $u
      $KnownUpdates[$record.updateId] = $u
      [void]$records.Add($record)
    } catch {
      Send-Warning $request.id (Get-ExceptionHResult $_.Exception) "skipped an update that could not be read ($([string]$u.Title)): $(Get-ExceptionMessage $_.Exception)"
    }
  }
  if ([string]$request.serverSelection -ne 'offline') { $script:LastOnlineSelection = [string]$request.serverSelection }
  if ($code -eq 'succeeded' -or $code -eq 'succeededWithErrors') { Send-Progress $request.id 'search' $null 100 $null $null $null }
  $data = $null
  if ($code -ne 'aborted' -and $code -ne 'failed') { $data = [ordered]@{ updates = $records.ToArray() } }
  return (New-Answer $code $null $data $null)
}

function Start-Download($Request) {
  $state = @{ request = $Request; kind = 'download'; job = $null; downloader = $null; callback = $null; updates = @(); abortRequested = $false; lastProgress = ''; missing = @(); already = @(); warnings = $null }
  $found = Find-Updates $Request.updateIds $Request.id
  $state.missing = @(foreach ($id in @($Request.updateIds)) { $k = ([string]$id).ToLowerInvariant(); if (-not $found.Contains($k)) { $k } })
  $toDownload = New-Object System.Collections.ArrayList
  foreach ($key in $found.Keys) {
    $u = $found[$key]
    if ([bool]$u.IsDownloaded) { $state.already += $key; continue }
    if (-not [bool]$u.EulaAccepted) { $u.AcceptEula() }
    [void]$toDownload.Add($u)
  }
  $state.updates = $toDownload.ToArray()
  if ($state.updates.Count -eq 0) { Send-Answer $Request (Get-DownloadAnswer $state); return $null }
  $downloader = $Session.CreateUpdateDownloader()
  $downloader.ClientApplicationID = $ClientApplicationId
  $downloader.Updates = New-UpdateCollection $state.updates
  $state.downloader = $downloader
  $state.callback = [Patchline.Wua.JobCallback]::new()
  [Patchline.Wua.KeepAwake]::Begin()
  $state.job = $downloader.BeginDownload($state.callback, $state.callback, $null)
  return $state
}

# Per-update results in the order the request named the updates.
function Select-InRequestOrder($Results, $Ids) {
  $byId = @{}
  foreach ($r in $Results) { $byId[[string]$r.updateId] = $r }
  return @(foreach ($id in @($Ids)) { $k = ([string]$id).ToLowerInvariant(); if ($byId.ContainsKey($k)) { $byId[$k] } })
}

function Get-MissingResults($State) {
  return @(foreach ($id in $State.missing) { [ordered]@{ updateId = $id; resultCode = 'failed'; hresult = $HResultNotApplicable } })
}

function Get-DownloadAnswer($State) {
  $request = $State.request
  $perUpdate = New-Object System.Collections.ArrayList
  foreach ($id in $State.already) { [void]$perUpdate.Add([ordered]@{ updateId = $id; resultCode = 'succeeded'; hresult = $null }) }
  foreach ($r in (Get-MissingResults $State)) { [void]$perUpdate.Add($r) }
  $code = 'succeeded'
  $hresult = $null
  if ($null -ne $State.job) {
    $result = $State.downloader.EndDownload($State.job)
    $code = Get-ResultCodeName $result.ResultCode
    $hresult = Format-HResult $result.HResult
    for ($i = 0; $i -lt $State.updates.Count; $i++) {
      $r = $result.GetUpdateResult($i)
      [void]$perUpdate.Add([ordered]@{ updateId = ([string]$State.updates[$i].Identity.UpdateID).ToLowerInvariant(); resultCode = (Get-ResultCodeName $r.ResultCode); hresult = (Format-HResult $r.HResult) })
    }
  }
  $done = @($State.already).Count + @($State.updates).Count
  $code = [Patchline.Wua.Outcome]::Merge($code, $done, @($State.missing).Count)
  $message = $null
  if ($done -eq 0) { $hresult = $HResultNotApplicable; $message = 'none of the updates was found' }
  return (New-Answer $code $hresult ([ordered]@{ updates = @(Select-InRequestOrder $perUpdate $request.updateIds) }) $message)
}

function Start-Install($Request) {
  $state = @{ request = $Request; kind = 'install'; job = $null; installer = $null; callback = $null; updates = @(); abortRequested = $false; lastProgress = ''; missing = @(); skipped = @(); warnings = $null }
  $installer = $Session.CreateUpdateInstaller()
  if ([bool]$installer.IsBusy) {
    Send-Result $Request 'failed' $HResultInstallNotAllowed $null 'the Windows Update installer is busy with another installation'
    return $null
  }
  # WUA would refuse (WU_E_INSTALL_NOT_ALLOWED) or leave the machine half-serviced; Ansible refuses too.
  if ([bool]$installer.RebootRequiredBeforeInstallation) {
    Send-Result $Request 'failed' $HResultInstallNotAllowed ([ordered]@{ rebootRequired = $true; updates = @() }) 'Windows Update requires a restart before it installs anything more (RebootRequiredBeforeInstallation): restart the host, then install'
    return $null
  }
  $found = Find-Updates $Request.updateIds $Request.id
  $state.missing = @(foreach ($id in @($Request.updateIds)) { $k = ([string]$id).ToLowerInvariant(); if (-not $found.Contains($k)) { $k } })
  $updates = New-Object System.Collections.ArrayList
  $skipped = New-Object System.Collections.ArrayList
  foreach ($key in $found.Keys) {
    $u = $found[$key]
    # As SYSTEM nobody can answer: WUA fails these with WU_E_NO_INTERACTIVE_USER or the installer
    # waits for a click that never comes. Skipped, and said so, rather than started.
    if ([bool]$u.InstallationBehavior.CanRequestUserInput) {
      [void]$skipped.Add($key)
      Send-Warning $Request.id $HResultNoInteractiveUser "skipped $($key): it can ask for user input (InstallationBehavior.CanRequestUserInput), which nobody can give to a SYSTEM install; install it from a logged-on session"
      continue
    }
    if (-not [bool]$u.EulaAccepted) { $u.AcceptEula() }
    [void]$updates.Add($u)
  }
  $state.skipped = $skipped.ToArray()
  $state.updates = $updates.ToArray()
  if ($state.updates.Count -eq 0) {
    Send-Answer $Request (Get-InstallAnswer $state)
    return $null
  }
  $installer.ClientApplicationID = $ClientApplicationId
  $installer.AllowSourcePrompts = $false
  $installer.Updates = New-UpdateCollection $state.updates
  $state.installer = $installer
  $state.callback = [Patchline.Wua.JobCallback]::new()
  [Patchline.Wua.KeepAwake]::Begin()
  $state.job = $installer.BeginInstall($state.callback, $state.callback, $null)
  return $state
}

function Get-InstallAnswer($State) {
  $request = $State.request
  $perUpdate = New-Object System.Collections.ArrayList
  foreach ($r in (Get-MissingResults $State)) { [void]$perUpdate.Add($r) }
  foreach ($id in $State.skipped) { [void]$perUpdate.Add([ordered]@{ updateId = $id; resultCode = 'failed'; hresult = $HResultNoInteractiveUser; rebootRequired = $false }) }
  $code = 'succeeded'
  $hresult = $null
  $message = $null
  $rebootRequired = $false
  if ($null -ne $State.job) {
    $result = $State.installer.EndInstall($State.job)
    for ($i = 0; $i -lt $State.updates.Count; $i++) {
      $r = $result.GetUpdateResult($i)
      [void]$perUpdate.Add([ordered]@{
          updateId       = ([string]$State.updates[$i].Identity.UpdateID).ToLowerInvariant()
          resultCode     = (Get-ResultCodeName $r.ResultCode)
          hresult        = (Format-HResult $r.HResult)
          rebootRequired = [bool]$r.RebootRequired
        })
    }
    $code = Get-ResultCodeName $result.ResultCode
    $hresult = Format-HResult $result.HResult
    $rebootRequired = [bool]$result.RebootRequired -or [bool](New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
  } elseif (@($State.skipped).Count -gt 0) {
    $hresult = $HResultNoInteractiveUser
    $message = 'none of the updates can be installed without a user present (not found, or InstallationBehavior.CanRequestUserInput)'
  } else {
    $hresult = $HResultNotApplicable
    $message = 'none of the updates was found'
  }
  $code = [Patchline.Wua.Outcome]::Merge($code, @($State.updates).Count, @($State.missing).Count + @($State.skipped).Count)
  return (New-Answer $code $hresult ([ordered]@{ rebootRequired = $rebootRequired; updates = @(Select-InRequestOrder $perUpdate $request.updateIds) }) $message)
}

# Progress of a running download/install (searches report none), sent only when it changed.
function Send-JobProgress($State) {
  if ($State.kind -eq 'search') { return }
  $p = $State.job.GetProgress()
  $index = [int]$p.CurrentUpdateIndex
  $updateId = $null
  if ($index -ge 0 -and $index -lt $State.updates.Count) { $updateId = ([string]$State.updates[$index].Identity.UpdateID).ToLowerInvariant() }
  $bytes = $null
  $total = $null
  if ($State.kind -eq 'download') {
    $bytes = [double]$p.TotalBytesDownloaded
    $total = [double]$p.TotalBytesToDownload
  }
  $key = "$([int]$p.PercentComplete)/$index/$([int]$p.CurrentUpdatePercentComplete)/$bytes"
  if ($key -eq $State.lastProgress) { return }
  $State.lastProgress = $key
  Send-Progress $State.request.id $State.kind $updateId $p.PercentComplete $p.CurrentUpdatePercentComplete $bytes $total
}

# The answer to a finished job; throws when EndSearch/EndDownload/EndInstall does.
function Get-JobAnswer($State) {
  switch ($State.kind) {
    'search' { return (Get-SearchAnswer $State) }
    'download' { return (Get-DownloadAnswer $State) }
    'install' { return (Get-InstallAnswer $State) }
  }
  throw "unknown job kind '$($State.kind)'"
}

# Releases what a job holds. Never throws: a CleanUp() that fails (the service went away) is a
# warning before the result, not a second answer after it.
function Close-Job($State) {
  if ($null -ne $State.job) {
    try { $State.job.CleanUp() }
    catch { Send-Warning $State.request.id (Get-ExceptionHResult $_.Exception) "could not clean up the $($State.kind) job: $(Get-ExceptionMessage $_.Exception)" }
  }
  [Patchline.Wua.KeepAwake]::End()
  Remove-ScanService $State
}

# Answers a job that ended: exactly one result, sent after Close-Job.
function Complete-Running($State) {
  try {
    $answer = Get-JobAnswer $State
  } catch {
    # EndX throws when the job failed as a whole, or was aborted before WUA produced a result.
    $code = $(if ($State.abortRequested) { 'aborted' } else { 'failed' })
    $answer = New-Answer $code (Get-ExceptionHResult $_.Exception) $null (Get-ExceptionMessage $_.Exception)
  }
  Close-Job $State
  Send-Answer $State.request $answer
}

# Answers a job whose IsCompleted threw: the Windows Update service stopped or restarted under it
# (RPC_S_CALL_FAILED, RPC_S_SERVER_UNAVAILABLE …), and the job object is gone with the old service.
function Complete-LostJob($State, $Exception) {
  $code = $(if ($State.abortRequested) { 'aborted' } else { 'failed' })
  $answer = New-Answer $code (Get-ExceptionHResult $Exception) $null "the Windows Update service stopped answering during the $($State.kind) (it may have restarted); run it again: $(Get-ExceptionMessage $Exception)"
  Close-Job $State
  Send-Answer $State.request $answer
}

# A GetProgress that fails is a warning, but not one per poll: the gate lets the first through,
# then the same text once per $ProgressWarningQuietMs, with the count held back.
function Send-ProgressFailure($State, $Exception) {
  if ($null -eq $State.warnings) { $State.warnings = [Patchline.Wua.WarningGate]::new($ProgressWarningQuietMs) }
  $hresult = Get-ExceptionHResult $Exception
  $text = Get-ExceptionMessage $Exception
  $held = $State.warnings.Admit("$hresult $text")
  if ($held -lt 0) { return }
  $more = $(if ($held -gt 0) { " ($held identical warnings held back)" } else { '' })
  Send-Warning $State.request.id $hresult "could not read progress: $text$more"
}

# ── synchronous requests ────────────────────────────────────────────────────────────────────────

function Invoke-RebootStatus($Request) {
  $signals = New-Object System.Collections.ArrayList
  if ([bool](New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired) { [void]$signals.Add('WUA SystemInfo.RebootRequired') }
  if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending') { [void]$signals.Add('CBS RebootPending') }
  if (Test-Path -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired') { [void]$signals.Add('WindowsUpdate RebootRequired') }
  $busy = [bool]$Session.CreateUpdateInstaller().IsBusy
  $os = Get-CimInstance -ClassName Win32_OperatingSystem -Property LastBootUpTime
  $boot = $os.LastBootUpTime.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
  $message = $null
  if ($signals.Count -gt 0) { $message = 'reboot pending: ' + ($signals -join ', ') }
  Send-Result $Request 'succeeded' $null ([ordered]@{ rebootRequired = ($signals.Count -gt 0); installerBusy = $busy; lastBootUpTime = $boot }) $message
}

function Invoke-History($Request) {
  $limit = $DefaultHistoryLimit
  if ($null -ne (Get-Field $Request 'limit')) { $limit = [int]$Request.limit }
  $searcher = $Session.CreateUpdateSearcher()
  $count = [Math]::Min($limit, [int]$searcher.GetTotalHistoryCount())
  $entries = New-Object System.Collections.ArrayList
  # One entry at a time, as PSWindowsUpdate reads them: a single unreadable entry makes
  # QueryHistory(0, N) throw as a whole, and the rest of the history is still worth having.
  for ($i = 0; $i -lt $count; $i++) {
    try {
      $e = $null
      foreach ($x in $searcher.QueryHistory($i, 1)) { $e = $x }
      if ($null -eq $e) { continue }
      $operation = [int]$e.Operation
      if ($operation -ne 1 -and $operation -ne 2) { continue }
      # A DATE of 0 (1899-12-30) marks a placeholder entry, not an operation (PSWindowsUpdate skips them too).
      if (([datetime]$e.Date).Year -le 1900) { continue }
      [void]$entries.Add([ordered]@{
          updateId   = ([string]$e.UpdateIdentity.UpdateID).ToLowerInvariant()
          title      = [string]$e.Title
          operation  = $(if ($operation -eq 1) { 'installation' } else { 'uninstallation' })
          resultCode = (Get-ResultCodeName $e.ResultCode)
          hresult    = (Format-HResult $e.HResult)
          date       = (Format-UtcTime $e.Date)
        })
    } catch {
      Send-Warning $Request.id (Get-ExceptionHResult $_.Exception) "skipped history entry $($i): $(Get-ExceptionMessage $_.Exception)"
    }
  }
  Send-Result $Request 'succeeded' $null ([ordered]@{ entries = $entries.ToArray() }) $null
}

function Invoke-SetHidden($Request, [bool]$Hidden) {
  $found = Find-Updates $Request.updateIds $Request.id
  $results = New-Object System.Collections.ArrayList
  $failures = 0
  $hresult = $null
  foreach ($id in @($Request.updateIds)) {
    $key = ([string]$id).ToLowerInvariant()
    if (-not $found.Contains($key)) { $failures++; $hresult = $HResultNotApplicable; continue }
    try {
      $found[$key].IsHidden = $Hidden
      [void]$results.Add([ordered]@{ updateId = $key; isHidden = $Hidden })
    } catch {
      $failures++
      $hresult = Get-ExceptionHResult $_.Exception
      Send-Warning $Request.id $hresult "could not set IsHidden=$Hidden on $($key): $(Get-ExceptionMessage $_.Exception)"
    }
  }
  # Only the updates whose flag was set are listed; a hide where none was set failed.
  $code = [Patchline.Wua.Outcome]::OfCounts($results.Count, $failures)
  Send-Result $Request $code $(if ($code -eq 'failed') { $hresult } else { $null }) ([ordered]@{ updates = $results.ToArray() }) $null
}

function Invoke-CopyToCache($Request) {
  $key = ([string]$Request.updateId).ToLowerInvariant()
  $found = Find-Updates @($key) $Request.id
  if (-not $found.Contains($key)) { Send-Result $Request 'failed' $HResultNotApplicable $null "update $key was not found"; return }
  foreach ($f in @($Request.files)) {
    if (-not (Test-Path -LiteralPath ([string]$f) -PathType Leaf)) { Send-Result $Request 'failed' $HResultFileNotFound $null "payload file not found: $f"; return }
  }
  $update = $found[$key]
  $bundled = @(foreach ($child in $update.BundledUpdates) { $child })
  if ($bundled.Count -eq 0) {
    $update.CopyToCache((New-StringCollection @($Request.files)))
  } else {
    # A bundle has no files of its own: hand each bundled update the files named in its DownloadContents.
    $handed = 0
    foreach ($child in $bundled) {
      $names = @(foreach ($c in $child.DownloadContents) { [System.IO.Path]::GetFileName(([uri][string]$c.DownloadUrl).AbsolutePath) })
      $files = @(foreach ($f in @($Request.files)) { if ($names -contains [System.IO.Path]::GetFileName([string]$f)) { [string]$f } })
      if ($files.Count -eq 0) { continue }
      $child.CopyToCache((New-StringCollection $files))
      $handed += $files.Count
    }
    if ($handed -eq 0) { Send-Result $Request 'failed' $HResultInvalidArg $null "none of the files matches the payloads of update $key"; return }
  }
  Send-Result $Request 'succeeded' $null ([ordered]@{ updateId = $key }) $null
}

function New-StringCollection($Items) {
  $collection = New-Object -ComObject Microsoft.Update.StringColl
  foreach ($i in $Items) { [void]$collection.Add([string]$i) }
  return , $collection
}

# ── the loop ────────────────────────────────────────────────────────────────────────────────────
# One WUA job runs at a time (WUA serialises them anyway); other requests wait in $Queue in
# arrival order. `abort` is handled at once, also while a job runs.

$Queue = New-Object System.Collections.Queue
$Running = $null

function Invoke-Abort($Request) {
  $target = [string](Get-Field $Request 'targetId')
  if (-not $target) {
    Send-Result $Request 'failed' $HResultInvalidArg ([ordered]@{ aborted = $false }) 'abort without targetId: name the request to abort'
    return
  }
  if ($null -ne $Running -and [string]$Running.request.id -eq $target) {
    try {
      $Running.job.RequestAbort()
    } catch {
      # The job may have ended between the poll and this call; it will be answered as it ended.
      Send-Result $Request 'failed' (Get-ExceptionHResult $_.Exception) ([ordered]@{ aborted = $false }) (Get-ExceptionMessage $_.Exception)
      return
    }
    $Running.abortRequested = $true
    Send-Result $Request 'succeeded' $null ([ordered]@{ aborted = $true }) $null
    return
  }
  $waiting = @($Queue.ToArray() | Where-Object { [string]$_.id -eq $target })
  if ($waiting.Count -gt 0) {
    $rest = @($Queue.ToArray() | Where-Object { [string]$_.id -ne $target })
    $Queue.Clear()
    foreach ($r in $rest) { $Queue.Enqueue($r) }
    Send-Result $waiting[0] 'aborted' $null $null 'aborted before it started'
    Send-Result $Request 'succeeded' $null ([ordered]@{ aborted = $true }) $null
    return
  }
  Send-Result $Request 'succeeded' $null ([ordered]@{ aborted = $false }) "no running or waiting request with id $target"
}

# Runs one request; returns the state of a started job, or $null when the request is answered.
function Start-Request($Request) {
  try {
    $type = [string]$Request.type
    if (-not $RequiredFields.ContainsKey($type)) {
      # An agent newer than this script: answer, or the agent waits for its timeout.
      Send-Result $Request 'failed' $HResultNotImplemented $null "unknown request type '$type': this wua.ps1 ($ProviderVersion) does not implement it"
      return $null
    }
    $absent = @(foreach ($field in $RequiredFields[$type]) { if ($null -eq (Get-Field $Request $field)) { $field } })
    if ($absent.Count -gt 0) {
      Send-Result $Request 'failed' $HResultInvalidArg $null "$type request without $($absent -join ', ')"
      return $null
    }
    switch ($type) {
      'search' { return (Start-Search $Request) }
      'download' { return (Start-Download $Request) }
      'install' { return (Start-Install $Request) }
      'rebootStatus' { Invoke-RebootStatus $Request }
      'history' { Invoke-History $Request }
      'hide' { Invoke-SetHidden $Request $true }
      'unhide' { Invoke-SetHidden $Request $false }
      'copyToCache' { Invoke-CopyToCache $Request }
    }
  } catch {
    [Patchline.Wua.KeepAwake]::End()
    Send-Result $Request 'failed' (Get-ExceptionHResult $_.Exception) $null (Get-ExceptionMessage $_.Exception)
  }
  return $null
}

function Receive-Line([string]$Line) {
  if ($Line.Trim() -eq '') { return }
  try {
    $request = ConvertFrom-Json -InputObject $Line
  } catch {
    Send-Warning $null $null "ignored a line that is not JSON: $($Line.Substring(0, [Math]::Min(200, $Line.Length)))"
    return
  }
  # `null`, a number, a string or an array parse as JSON but are not requests.
  if ($null -eq $request -or $request -isnot [System.Management.Automation.PSCustomObject]) {
    Send-Warning $null $null "ignored a line that is not a JSON object: $($Line.Substring(0, [Math]::Min(200, $Line.Length)))"
    return
  }
  $id = Get-Field $request 'id'
  $type = Get-Field $request 'type'
  if ($null -eq $id -or $null -eq $type -or "$id" -eq '' -or "$type" -eq '') {
    # Without an id nobody can be answered; the agent never sends such a line.
    $message = 'ignored a request without id or type'
    if ($null -ne $id -and "$id" -ne '') { Send-Warning ([string]$id) $null $message } else { Send-Warning $null $null $message }
    return
  }
  if ([string]$type -eq 'abort') { Invoke-Abort $request } else { $Queue.Enqueue($request) }
}

# Offline-scan registrations left by an earlier provider: older versions registered them
# non-volatile, and one killed mid-scan never reached RemoveService. One provider runs per host.
function Remove-StaleScanServices {
  try {
    $stale = @(foreach ($s in $ServiceManager.Services) { if ([string]$s.Name -eq $OfflineServiceName -and [bool]$s.IsScanPackageService) { [string]$s.ServiceID } })
  } catch {
    Send-Warning $null (Get-ExceptionHResult $_.Exception) "could not list the registered update services: $(Get-ExceptionMessage $_.Exception)"
    return
  }
  foreach ($serviceId in $stale) {
    try {
      $ServiceManager.RemoveService($serviceId)
      Send-Warning $null $null "removed offline scan registration $serviceId left behind by an earlier provider that stopped before cleaning up"
    } catch {
      Send-Warning $null (Get-ExceptionHResult $_.Exception) "could not remove the stale offline scan registration $($serviceId): $(Get-ExceptionMessage $_.Exception)"
    }
  }
}

Send-Event ([ordered]@{ type = 'hello'; protocol = $ProtocolVersion; provider = 'powershell'; version = $ProviderVersion; computerName = [string]$env:COMPUTERNAME })

try {
  Remove-StaleScanServices
  while ($true) {
    if ($null -ne $Running) {
      try {
        $completed = [bool]$Running.job.IsCompleted
      } catch {
        $lost = $Running
        $Running = $null
        Complete-LostJob $lost $_.Exception
        continue
      }
      if ($completed) {
        $done = $Running
        $Running = $null
        Complete-Running $done
        continue
      }
      try { Send-JobProgress $Running }
      catch { Send-ProgressFailure $Running $_.Exception }
    } elseif ($Queue.Count -gt 0) {
      $Running = Start-Request $Queue.Dequeue()
      continue
    } elseif ($In.IsFinished) {
      # stdin closed and nothing left to do; a running job (above) is always finished first,
      # because stopping an install half-way is worse than answering nobody.
      break
    }
    # Waits the whole interval even once stdin is closed (LineReader.Next), so polling a job
    # that outlives stdin does not spin.
    $line = $In.Next($(if ($null -ne $Running) { $PollIntervalMs } else { $IdleReadTimeoutMs }))
    if ($null -ne $line) { Receive-Line $line }
  }
} catch {
  # Only a broken stdout (the agent went away) or a bug in this script gets here: requests catch
  # their own failures. Nobody can be answered on stdout, so say why on stderr.
  [Patchline.Wua.KeepAwake]::End()
  [Console]::Error.WriteLine("wua.ps1 stopped: $(Get-ExceptionMessage $_.Exception)")
  exit 1
}
exit 0
