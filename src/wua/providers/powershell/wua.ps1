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
# asfAllowPendingRegistration | asfAllowOnlineRegistration | asfRegisterServiceWithAU
$AddServiceFlags = 7
# usoNonVolatileService: the registration survives until RemoveService (done after every scan).
$ScanPackageServiceOption = 1
# How often a running job is polled for progress and completion; also how long a read of stdin
# waits while a job runs, so an abort is seen within this time.
$PollIntervalMs = 500
# How long an idle read of stdin waits before the loop checks again whether stdin was closed.
$IdleReadTimeoutMs = 5000
$DefaultHistoryLimit = 50
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

        /// <summary>The next line, or null when none arrived within timeoutMs or stdin is closed.</summary>
        public string Next(int timeoutMs)
        {
            string line;
            return lines.TryTake(out line, timeoutMs) ? line : null;
        }

        /// <summary>stdin was closed and every line has been taken.</summary>
        public bool IsFinished { get { return lines.IsCompleted; } }
        public string ReadError { get { return readError; } }
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
# Each Start-* begins a WUA job and returns a state object; Complete-* ends it and sends the result.

function Start-Search($Request) {
  $state = @{ request = $Request; kind = 'search'; job = $null; searcher = $null; callback = $null; scanServiceId = $null; abortRequested = $false; lastProgress = '' }
  $searcher = $Session.CreateUpdateSearcher()
  $searcher.ClientApplicationID = $ClientApplicationId
  if ([string]$Request.serverSelection -eq 'offline') {
    $path = ''
    if ($null -ne $Request.PSObject.Properties['offlineCabPath']) { $path = [string]$Request.offlineCabPath }
    if (-not $path) { Send-Result $Request 'failed' $HResultInvalidArg $null 'offline search without offlineCabPath'; return $null }
    if ($path.StartsWith('\\')) { Send-Warning $Request.id $null "offline scan file is on a UNC path ($path): WUA is often denied access to it; copy it to a local disk" }
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) { Send-Result $Request 'failed' $HResultFileNotFound $null "offline scan file not found: $path"; return $null }
    $service = $ServiceManager.AddScanPackageService($OfflineServiceName, $path, $ScanPackageServiceOption)
    $state.scanServiceId = [string]$service.ServiceID
    # ssOthers + the package's ServiceID; without them WUA goes online (0x8024402C offline).
    $searcher.ServerSelection = 3
    $searcher.ServiceID = $state.scanServiceId
  } else {
    Set-ServerSelection $searcher ([string]$Request.serverSelection)
  }
  if ([string]$Request.criteria -match '(?i)IsHidden\s*=\s*1') { $searcher.IncludePotentiallySupersededUpdates = $true }
  $state.searcher = $searcher
  $state.callback = New-Object Patchline.Wua.JobCallback
  Send-Progress $Request.id 'search' $null 0 $null $null $null
  try {
    $state.job = $searcher.BeginSearch([string]$Request.criteria, $state.callback, $null)
  } catch {
    Remove-ScanService $state
    throw
  }
  return $state
}

function Remove-ScanService($State) {
  if (-not $State.scanServiceId) { return }
  try { $ServiceManager.RemoveService($State.scanServiceId) }
  catch { Send-Warning $State.request.id (Get-ExceptionHResult $_.Exception) "could not remove the offline scan service $($State.scanServiceId): $(Get-ExceptionMessage $_.Exception)" }
  $State.scanServiceId = $null
}

function Complete-Search($State) {
  $request = $State.request
  try {
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
    Send-Result $request $code $null $data $null
  } finally {
    $State.job.CleanUp()
    Remove-ScanService $State
  }
}

function Start-Download($Request) {
  $state = @{ request = $Request; kind = 'download'; job = $null; downloader = $null; callback = $null; updates = @(); abortRequested = $false; lastProgress = ''; missing = @(); already = @() }
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
  if ($state.updates.Count -eq 0) { Complete-Download $state; return $null }
  $downloader = $Session.CreateUpdateDownloader()
  $downloader.ClientApplicationID = $ClientApplicationId
  $downloader.Updates = New-UpdateCollection $state.updates
  $state.downloader = $downloader
  $state.callback = New-Object Patchline.Wua.JobCallback
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

function Complete-Download($State) {
  $request = $State.request
  $perUpdate = New-Object System.Collections.ArrayList
  foreach ($id in $State.already) { [void]$perUpdate.Add([ordered]@{ updateId = $id; resultCode = 'succeeded'; hresult = $null }) }
  foreach ($r in (Get-MissingResults $State)) { [void]$perUpdate.Add($r) }
  $code = 'succeeded'
  $hresult = $null
  if ($null -ne $State.job) {
    try {
      $result = $State.downloader.EndDownload($State.job)
      $code = Get-ResultCodeName $result.ResultCode
      $hresult = Format-HResult $result.HResult
      for ($i = 0; $i -lt $State.updates.Count; $i++) {
        $r = $result.GetUpdateResult($i)
        [void]$perUpdate.Add([ordered]@{ updateId = ([string]$State.updates[$i].Identity.UpdateID).ToLowerInvariant(); resultCode = (Get-ResultCodeName $r.ResultCode); hresult = (Format-HResult $r.HResult) })
      }
    } finally {
      $State.job.CleanUp()
      [Patchline.Wua.KeepAwake]::End()
    }
  }
  if ($code -eq 'succeeded' -and $State.missing.Count -gt 0) { $code = 'succeededWithErrors' }
  Send-Result $request $code $hresult ([ordered]@{ updates = @(Select-InRequestOrder $perUpdate $request.updateIds) }) $null
}

function Start-Install($Request) {
  $state = @{ request = $Request; kind = 'install'; job = $null; installer = $null; callback = $null; updates = @(); abortRequested = $false; lastProgress = ''; missing = @() }
  $installer = $Session.CreateUpdateInstaller()
  if ([bool]$installer.IsBusy) {
    Send-Result $Request 'failed' $HResultInstallNotAllowed $null 'the Windows Update installer is busy with another installation'
    return $null
  }
  $found = Find-Updates $Request.updateIds $Request.id
  $state.missing = @(foreach ($id in @($Request.updateIds)) { $k = ([string]$id).ToLowerInvariant(); if (-not $found.Contains($k)) { $k } })
  $updates = New-Object System.Collections.ArrayList
  foreach ($key in $found.Keys) {
    $u = $found[$key]
    if (-not [bool]$u.EulaAccepted) { $u.AcceptEula() }
    [void]$updates.Add($u)
  }
  $state.updates = $updates.ToArray()
  if ($state.updates.Count -eq 0) {
    Send-Result $Request 'failed' $HResultNotApplicable ([ordered]@{ rebootRequired = $false; updates = @(Get-MissingResults $state) }) 'none of the updates was found'
    return $null
  }
  $installer.ClientApplicationID = $ClientApplicationId
  $installer.AllowSourcePrompts = $false
  $installer.Updates = New-UpdateCollection $state.updates
  $state.installer = $installer
  $state.callback = New-Object Patchline.Wua.JobCallback
  [Patchline.Wua.KeepAwake]::Begin()
  $state.job = $installer.BeginInstall($state.callback, $state.callback, $null)
  return $state
}

function Complete-Install($State) {
  $request = $State.request
  try {
    $result = $State.installer.EndInstall($State.job)
    $perUpdate = New-Object System.Collections.ArrayList
    foreach ($r in (Get-MissingResults $State)) { [void]$perUpdate.Add($r) }
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
    if ($code -eq 'succeeded' -and $State.missing.Count -gt 0) { $code = 'succeededWithErrors' }
    $rebootRequired = [bool]$result.RebootRequired -or [bool](New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired
    Send-Result $request $code (Format-HResult $result.HResult) ([ordered]@{ rebootRequired = $rebootRequired; updates = @(Select-InRequestOrder $perUpdate $request.updateIds) }) $null
  } finally {
    $State.job.CleanUp()
    [Patchline.Wua.KeepAwake]::End()
  }
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

function Complete-Job($State) {
  switch ($State.kind) {
    'search' { Complete-Search $State }
    'download' { Complete-Download $State }
    'install' { Complete-Install $State }
  }
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
  if ($null -ne $Request.PSObject.Properties['limit'] -and $null -ne $Request.limit) { $limit = [int]$Request.limit }
  $searcher = $Session.CreateUpdateSearcher()
  $count = [int]$searcher.GetTotalHistoryCount()
  $entries = New-Object System.Collections.ArrayList
  if ($count -gt 0) {
    foreach ($e in $searcher.QueryHistory(0, [Math]::Min($limit, $count))) {
      $operation = [int]$e.Operation
      if ($operation -ne 1 -and $operation -ne 2) { continue }
      [void]$entries.Add([ordered]@{
          updateId   = ([string]$e.UpdateIdentity.UpdateID).ToLowerInvariant()
          title      = [string]$e.Title
          operation  = $(if ($operation -eq 1) { 'installation' } else { 'uninstallation' })
          resultCode = (Get-ResultCodeName $e.ResultCode)
          hresult    = (Format-HResult $e.HResult)
          date       = (Format-UtcTime $e.Date)
        })
    }
  }
  Send-Result $Request 'succeeded' $null ([ordered]@{ entries = $entries.ToArray() }) $null
}

function Invoke-SetHidden($Request, [bool]$Hidden) {
  $found = Find-Updates $Request.updateIds $Request.id
  $results = New-Object System.Collections.ArrayList
  $failures = 0
  foreach ($id in @($Request.updateIds)) {
    $key = ([string]$id).ToLowerInvariant()
    if (-not $found.Contains($key)) { $failures++; continue }
    try {
      $found[$key].IsHidden = $Hidden
    } catch {
      $failures++
      Send-Warning $Request.id (Get-ExceptionHResult $_.Exception) "could not set IsHidden=$Hidden on $($key): $(Get-ExceptionMessage $_.Exception)"
    }
    [void]$results.Add([ordered]@{ updateId = $key; isHidden = [bool]$found[$key].IsHidden })
  }
  $code = 'succeeded'
  if ($failures -gt 0) { $code = $(if ($results.Count -gt 0) { 'succeededWithErrors' } else { 'failed' }) }
  Send-Result $Request $code $null ([ordered]@{ updates = $results.ToArray() }) $null
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
  $target = [string]$Request.targetId
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
    switch ([string]$Request.type) {
      'search' { return (Start-Search $Request) }
      'download' { return (Start-Download $Request) }
      'install' { return (Start-Install $Request) }
      'rebootStatus' { Invoke-RebootStatus $Request }
      'history' { Invoke-History $Request }
      'hide' { Invoke-SetHidden $Request $true }
      'unhide' { Invoke-SetHidden $Request $false }
      'copyToCache' { Invoke-CopyToCache $Request }
      default { Send-Warning $Request.id $null "unknown request type '$([string]$Request.type)'" }
    }
  } catch {
    [Patchline.Wua.KeepAwake]::End()
    Send-Result $Request 'failed' (Get-ExceptionHResult $_.Exception) $null (Get-ExceptionMessage $_.Exception)
  }
  return $null
}

function Complete-Running($State) {
  try {
    Complete-Job $State
  } catch {
    # EndX throws when the job failed as a whole, or was aborted before WUA produced a result.
    $code = $(if ($State.abortRequested) { 'aborted' } else { 'failed' })
    Send-Result $State.request $code (Get-ExceptionHResult $_.Exception) $null (Get-ExceptionMessage $_.Exception)
  }
}

function Receive-Line([string]$Line) {
  if ($Line.Trim() -eq '') { return }
  try {
    $request = ConvertFrom-Json -InputObject $Line
  } catch {
    Send-Warning $null $null "ignored a line that is not JSON: $($Line.Substring(0, [Math]::Min(200, $Line.Length)))"
    return
  }
  if ($null -eq $request.PSObject.Properties['id'] -or $null -eq $request.PSObject.Properties['type']) {
    Send-Warning $null $null 'ignored a request without id or type'
    return
  }
  if ([string]$request.type -eq 'abort') { Invoke-Abort $request } else { $Queue.Enqueue($request) }
}

Send-Event ([ordered]@{ type = 'hello'; protocol = $ProtocolVersion; provider = 'powershell'; version = $ProviderVersion; computerName = [string]$env:COMPUTERNAME })

try {
  while ($true) {
    if ($null -ne $Running) {
      if ([bool]$Running.job.IsCompleted) {
        $done = $Running
        $Running = $null
        Complete-Running $done
        continue
      }
      try { Send-JobProgress $Running }
      catch { Send-Warning $Running.request.id (Get-ExceptionHResult $_.Exception) "could not read progress: $(Get-ExceptionMessage $_.Exception)" }
    } elseif ($Queue.Count -gt 0) {
      $Running = Start-Request $Queue.Dequeue()
      continue
    } elseif ($In.IsFinished) {
      # stdin closed and nothing left to do; a running job (above) is always finished first,
      # because stopping an install half-way is worse than answering nobody.
      break
    }
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
