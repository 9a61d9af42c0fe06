/**
 * Text of the generated catalog's members, in Microsoft's shapes: package.xml pieces (in the
 * OfflineSync namespace, one long line as Microsoft writes it) and the c/x/l shard blobs
 * (namespace-less fragments). Pure functions of a GenUpdate.
 */
import { OFFLINE_SYNC_NS } from '../catalog/package-xml.ts';
import type { GenFile, GenUpdate } from './catalog-gen-model.ts';

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface PackageHeaderText {
  readonly packageId: string;
  readonly sourceId: string;
  readonly creationDate: string;
}

export function packageXmlHead(h: PackageHeaderText): string {
  return `<?xml version="1.0" encoding="utf-8"?><OfflineSyncPackage xmlns="${OFFLINE_SYNC_NS}" MinimumClientVersion="5.8.0.2678" ProtocolVersion="1.0" PackageId="${h.packageId}" SourceId="${h.sourceId}" CreationDate="${h.creationDate}" PackageVersion="1.1"><Updates>`;
}

export const PACKAGE_XML_MIDDLE = '</Updates><FileLocations>';
export const PACKAGE_XML_TAIL = '</FileLocations></OfflineSyncPackage>';

/** One <Update> element of package.xml. */
export function updateXml(u: GenUpdate): string {
  let s = `<Update CreationDate="${u.creationDate.replace(/\.\d{3}Z$/, 'Z')}" DefaultLanguage="en" UpdateId="${u.updateId}" RevisionNumber="${u.revisionNumber}" RevisionId="${u.revisionId}"`;
  if (u.isLeaf) s += ' IsLeaf="true"';
  if (u.isBundle) s += ' IsBundle="true"';
  if (u.updateType === 'Category') s += ' DeploymentAction="Evaluate"';
  s += '>';
  if (u.categories.length > 0)
    s += `<Categories>${u.categories.map((c) => `<Category Type="${c.type}" Id="${c.id}"/>`).join('')}</Categories>`;
  if (u.prerequisites.length > 0 || u.orPrerequisites.length > 0) {
    s += '<Prerequisites>';
    s += u.prerequisites.map((id) => `<UpdateId Id="${id}"/>`).join('');
    s += u.orPrerequisites.map((group) => `<Or>${group.map((id) => `<UpdateId Id="${id}"/>`).join('')}</Or>`).join('');
    s += '</Prerequisites>';
  }
  if (u.bundledBy.length > 0) s += `<BundledBy>${u.bundledBy.map((r) => `<Revision Id="${r}"/>`).join('')}</BundledBy>`;
  if (u.supersededBy.length > 0)
    s += `<SupersededBy>${u.supersededBy.map((r) => `<Revision Id="${r}"/>`).join('')}</SupersededBy>`;
  if (u.files.length > 0) s += `<PayloadFiles>${u.files.map((f) => `<File Id="${f.id}"/>`).join('')}</PayloadFiles>`;
  return `${s}</Update>`;
}

export function fileLocationXml(f: GenFile): string {
  return `<FileLocation Id="${f.id}" Url="${esc(f.url)}" IsIncluded="false"/>`;
}

/** c/<rev>: identity, type, relationships. Several roots, no namespace, as Microsoft's. */
export function coreBlob(u: GenUpdate): string {
  let s = `<UpdateIdentity UpdateID="${u.updateId}" RevisionNumber="${u.revisionNumber}"/>`;
  s += `<Properties UpdateType="${u.updateType}"${u.updateType === 'Category' ? '' : ' ExplicitlyDeployable="true" AutoSelectOnWebSites="true"'}/>`;
  let rel = '';
  if (u.prerequisites.length > 0 || u.orPrerequisites.length > 0) {
    rel += '<Prerequisites>';
    rel += u.prerequisites.map((id) => `<UpdateIdentity UpdateID="${id}"/>`).join('');
    rel += u.orPrerequisites
      .map(
        (g) =>
          `<AtLeastOne IsCategory="true">${g.map((id) => `<UpdateIdentity UpdateID="${id}"/>`).join('')}</AtLeastOne>`,
      )
      .join('');
    rel += '</Prerequisites>';
  }
  if (u.bundles.length > 0)
    rel += `<BundledUpdates>${u.bundles.map((id) => `<UpdateIdentity UpdateID="${id}" RevisionNumber="${u.revisionNumber}"/>`).join('')}</BundledUpdates>`;
  if (u.supersedes.length > 0)
    rel += `<SupersededUpdates>${u.supersedes.map((id) => `<UpdateIdentity UpdateID="${id}"/>`).join('')}</SupersededUpdates>`;
  return `${s}<Relationships>${rel}</Relationships>`;
}

/**
 * x/<rev>: KB, severity, install behaviour, files. No CreationDate: Microsoft strips it from real
 * x/ blobs, so the importer must take the date from package.xml's Update/@CreationDate — and the
 * lab takes the same path real data takes.
 */
export function extendedBlob(u: GenUpdate): string {
  const maxSize = u.files.reduce((sum, f) => sum + f.size, 0);
  let s = `<ExtendedProperties DefaultPropertiesLanguage="en"`;
  if (u.updateType !== 'Category') s += ` Handler="http://schemas.microsoft.com/msus/2002/12/UpdateHandlers/Cbs"`;
  s += ` MaxDownloadSize="${maxSize}" MinDownloadSize="0"`;
  if (u.severity) s += ` MsrcSeverity="${u.severity}"`;
  if (u.browseOnly) s += ' BrowseOnly="true"';
  if (u.updateType !== 'Category') s += ' IsBeta="false"';
  s += '>';
  if (u.rebootBehavior)
    s += `<InstallationBehavior RebootBehavior="${u.rebootBehavior}"${u.impact ? ` Impact="${u.impact}"` : ''}/><UninstallationBehavior/>`;
  if (u.supportUrl) s += `<SupportUrl>${esc(u.supportUrl)}</SupportUrl>`;
  if (u.kb) s += `<KBArticleID>${u.kb}</KBArticleID>`;
  s += '</ExtendedProperties>';
  if (u.files.length > 0) {
    s += '<Files>';
    for (const f of u.files) {
      s += `<File Digest="${f.id}" DigestAlgorithm="SHA1" FileName="${esc(f.fileName)}" Size="${f.size}" Modified="${u.creationDate}">`;
      if (f.sha256) s += `<AdditionalDigest Algorithm="SHA256">${f.sha256}</AdditionalDigest>`;
      s += '</File>';
    }
    s += '</Files><HandlerSpecificData type="cbs:Cbs"/>';
  }
  return s;
}

/** l/en/<rev>: title and texts. */
export function localizedBlob(u: GenUpdate): string {
  let s = `<LocalizedProperties><Language>en</Language><Title>${esc(u.title)}</Title>`;
  if (u.description) s += `<Description>${esc(u.description)}</Description>`;
  if (u.kb) s += `<MoreInfoUrl>https://support.microsoft.com/help/${u.kb}</MoreInfoUrl>`;
  if (u.supportUrl) s += `<SupportUrl>${esc(u.supportUrl)}</SupportUrl>`;
  return `${s}</LocalizedProperties>`;
}
