// The bundle container: round trips, agrees with the system's tar, and refuses every kind of
// archive our writer never makes, each with its own message.
#include "cyclecast/lifecycle/archive.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tar_edit.h"
#include "temp_dir.h"

namespace cyclecast::bundle {
namespace {

using cyclecast::bundle::testing::fix_checksum;
using cyclecast::bundle::testing::set_field;
using cyclecast::bundle::testing::set_name;
using cyclecast::testing::read_file;
using cyclecast::testing::TempDir;

std::vector<uint8_t> bytes(const std::string& text) {
  return {text.begin(), text.end()};
}

std::vector<ArchiveMember> sample_members() {
  return {{"manifest.json", bytes("{}\n")},
          {"model/model.bin", std::vector<uint8_t>(1000, 0xab)},
          {"firmware/include/cyclecast/cc_nn.h", bytes("/* header */\n")},
          {"empty.txt", {}},
          {"exactly-512.bin", std::vector<uint8_t>(512, 7)}};
}

std::vector<uint8_t> sample_archive() {
  auto archive = write_archive(sample_members(), 1'790'000'000);
  EXPECT_TRUE(archive.ok());
  return archive.ok() ? *archive : std::vector<uint8_t>{};
}

std::string refusal(const std::vector<uint8_t>& archive) {
  auto read = read_archive(archive);
  EXPECT_FALSE(read.ok());
  return read.ok() ? std::string("(accepted)") : read.error().message;
}

TEST(Archive, RoundTripsNamesAndBytesInOrder) {
  const std::vector<uint8_t> archive = sample_archive();
  EXPECT_EQ(archive.size() % kTarBlockBytes, 0u);
  auto members = read_archive(archive);
  ASSERT_TRUE(members.ok()) << members.error().message;
  const auto expected = sample_members();
  ASSERT_EQ(members->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*members)[i].name, expected[i].name);
    EXPECT_EQ((*members)[i].data, expected[i].data);
  }
}

TEST(Archive, SameInputsGiveSameBytes) {
  EXPECT_EQ(sample_archive(), sample_archive());
}

TEST(Archive, SystemTarListsAndExtractsIt) {
  if (std::system("command -v tar >/dev/null 2>&1") != 0) GTEST_SKIP() << "no tar on this machine";
  TempDir dir;
  const std::vector<uint8_t> archive = sample_archive();
  {
    std::FILE* f = std::fopen((dir / "b.tar").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(archive.data(), 1, archive.size(), f), archive.size());
    std::fclose(f);
  }
  const std::string command = "cd '" + dir.path().string() +
                              "' && mkdir x && tar -xf b.tar -C x && tar -tf b.tar > list.txt";
  ASSERT_EQ(std::system(command.c_str()), 0);
  EXPECT_EQ(read_file(dir / "list.txt"),
            "manifest.json\nmodel/model.bin\nfirmware/include/cyclecast/cc_nn.h\nempty.txt\n"
            "exactly-512.bin\n");
  EXPECT_EQ(read_file(dir / "x/firmware/include/cyclecast/cc_nn.h"), "/* header */\n");
  EXPECT_EQ(read_file(dir / "x/model/model.bin"), std::string(1000, '\xab'));
}

TEST(Archive, RefusesUnsafeNamesWhenWriting) {
  for (const char* name : {"/etc/passwd", "../up", "a/../../b", "a//b", "a/./b", "dir/", "",
                           "back\\slash", "sp ace"}) {
    auto archive = write_archive({{name, bytes("x")}}, 0);
    ASSERT_FALSE(archive.ok()) << name;
    EXPECT_NE(archive.error().message.find("unsafe member name"), std::string::npos) << name;
  }
  EXPECT_FALSE(write_archive({{std::string(101, 'a'), bytes("x")}}, 0).ok());
  EXPECT_TRUE(write_archive({{std::string(100, 'a'), bytes("x")}}, 0).ok());
}

TEST(Archive, RefusesDuplicatesAndFilesUnderFiles) {
  auto duplicate = write_archive({{"a", bytes("1")}, {"a", bytes("2")}}, 0);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.error().message.find("duplicate member 'a'"), std::string::npos);
  auto under = write_archive({{"a", bytes("1")}, {"a/b", bytes("2")}}, 0);
  ASSERT_FALSE(under.ok());
  EXPECT_NE(under.error().message.find("lies under 'a'"), std::string::npos);
  auto above = write_archive({{"a/b", bytes("1")}, {"a", bytes("2")}}, 0);
  ASSERT_FALSE(above.ok());
  EXPECT_NE(above.error().message.find("is also a directory"), std::string::npos);

  // The same refusals when reading: a duplicate made by renaming the second member.
  std::vector<uint8_t> archive = sample_archive();
  set_name(archive, 512 + 512, "manifest.json");  // header of the second member
  EXPECT_NE(refusal(archive).find("duplicate member 'manifest.json'"), std::string::npos);
}

TEST(Archive, RefusesPathTraversalAndAbsoluteNamesWhenReading) {
  for (const char* name : {"../../etc/cron.d/x", "/etc/passwd", "model/../../x"}) {
    std::vector<uint8_t> archive = sample_archive();
    set_name(archive, 0, name);
    EXPECT_NE(refusal(archive).find("unsafe member name '" + std::string(name) + "'"),
              std::string::npos)
        << name;
  }
}

TEST(Archive, RefusesLinksDirectoriesAndExtensionHeaders) {
  const std::pair<char, const char*> cases[] = {{'2', "is a link"},
                                                {'1', "is a link"},
                                                {'5', "has type '5'"},
                                                {'x', "has type 'x'"},
                                                {'L', "has type 'L'"}};
  for (const auto& [type, message] : cases) {
    std::vector<uint8_t> archive = sample_archive();
    archive[156] = static_cast<uint8_t>(type);
    fix_checksum(archive, 0);
    const std::string error = refusal(archive);
    EXPECT_NE(error.find(message), std::string::npos) << type << ": " << error;
  }
}

TEST(Archive, RefusesABadHeaderChecksum) {
  std::vector<uint8_t> archive = sample_archive();
  archive[3] ^= 0x01;  // inside the first name
  EXPECT_NE(refusal(archive).find("bad checksum"), std::string::npos);
}

TEST(Archive, RefusesTruncationAnywhere) {
  const std::vector<uint8_t> archive = sample_archive();
  for (size_t cut : {size_t{0}, size_t{100}, size_t{512}, size_t{1024}, size_t{1500},
                     archive.size() - 1024, archive.size() - 512, archive.size() - 1}) {
    const std::vector<uint8_t> truncated(archive.begin(),
                                         archive.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_NE(refusal(truncated).find("truncated archive"), std::string::npos) << cut;
  }
}

TEST(Archive, RefusesDataAfterTheEndAndNonZeroPadding) {
  std::vector<uint8_t> trailing = sample_archive();
  trailing.insert(trailing.end(), 512, 0);
  EXPECT_TRUE(read_archive(trailing).ok());  // zero records after the end, as tar pads
  trailing.back() = 1;
  EXPECT_NE(refusal(trailing).find("data after its end blocks"), std::string::npos);

  std::vector<uint8_t> padding = sample_archive();
  padding[512 + 3] = 'x';  // the padding after manifest.json's 3 bytes
  EXPECT_NE(refusal(padding).find("non-zero padding"), std::string::npos);
}

TEST(Archive, RefusesOversizedMembersAndTooManyMembers) {
  ArchiveLimits limits;
  limits.max_member_bytes = 999;
  auto read = read_archive(sample_archive(), limits);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("'model/model.bin' declares 1000 bytes, more than the limit"),
            std::string::npos);
  limits = ArchiveLimits{};
  limits.max_members = 4;
  read = read_archive(sample_archive(), limits);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("more than 4 members"), std::string::npos);
  EXPECT_FALSE(write_archive(sample_members(), 0, limits).ok());
}

TEST(Archive, RefusesASizeFieldThatIsNotOctal) {
  std::vector<uint8_t> archive = sample_archive();
  archive[124] = '9';
  fix_checksum(archive, 0);
  EXPECT_NE(refusal(archive).find("size field is not octal"), std::string::npos);
}

TEST(Archive, RefusesANonUstarHeader) {
  std::vector<uint8_t> archive = sample_archive();
  std::memcpy(&archive[257], "ustar  ", 8);  // the old GNU magic
  fix_checksum(archive, 0);
  EXPECT_NE(refusal(archive).find("not a POSIX ustar header"), std::string::npos);
}

// Offset of the second member's header (model/model.bin): manifest.json's header and 3 bytes.
constexpr size_t kModelHeader = 2 * kTarBlockBytes;

TEST(Archive, RefusesEveryHeaderFieldTheWriterNeverMakes) {
  struct Case {
    size_t offset;
    std::string bytes;
    const char* message;
  };
  using namespace std::string_literals;
  const Case cases[] = {
      {100, "0004777\0"s, "header field 'mode' is \"0004777\", the writer makes \"0000644\""},
      {100, "000644 \0"s, "header field 'mode' is \"000644 \""},  // another octal spelling
      {108, "0001750\0"s, "header field 'uid' is \"0001750\", the writer makes \"0000000\""},
      {116, "0001750\0"s, "header field 'gid' is \"0001750\""},
      {136, "15254235601\0"s, "header field 'mtime' is \"15254235601\", the writer makes"},
      {265, "root"s, "header field 'uname' is \"root\", the writer makes \"\""},
      {297, "root"s, "header field 'gname' is \"root\""},
      {329, "0000000\0"s, "header field 'devmajor' is \"0000000\""},  // as GNU tar writes
      {337, "0000001\0"s, "header field 'devminor' is \"0000001\""},
      {500, "x"s, "header field 'pad' is \"x\""},
      {15, "\0hidden"s,  // bytes after the name's NUL
       "header field 'name' is \"model/model.bin\\x00hidden\", the writer makes "
       "\"model/model.bin\""},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> archive = sample_archive();
    set_field(archive, kModelHeader, c.offset, c.bytes);
    const std::string error = refusal(archive);
    EXPECT_NE(error.find("member 'model/model.bin': " + std::string(c.message)), std::string::npos)
        << c.offset << ": " << error;
  }
}

TEST(Archive, RefusesAChecksumWrittenOtherwise) {
  std::vector<uint8_t> archive = sample_archive();
  fix_checksum(archive, kModelHeader);
  const std::string usual(reinterpret_cast<const char*>(&archive[kModelHeader + 148]), 6);
  // The same sum as seven digits and a NUL, as some tars write it.
  std::memcpy(&archive[kModelHeader + 148], ("0" + usual + std::string(1, '\0')).data(), 8);
  EXPECT_NE(refusal(archive).find("member 'model/model.bin': header field 'chksum'"),
            std::string::npos);
}

TEST(Archive, RefusesBase256Numbers) {
  for (const auto& [offset, field] : {std::pair<size_t, const char*>{100, "mode"},
                                      {108, "uid"},
                                      {116, "gid"},
                                      {124, "size"},
                                      {136, "mtime"},
                                      {329, "devmajor"}}) {
    std::vector<uint8_t> archive = sample_archive();
    // GNU tar's base-256: the high bit of the first byte set, the value big-endian after it.
    std::string number(offset == 124 || offset == 136 ? 12 : 8, '\0');
    number[0] = '\x80';
    number.back() = offset == 124 ? '\xe8' : '\x01';
    if (offset == 124) number[number.size() - 2] = '\x03';  // 1000, model.bin's true size
    set_field(archive, kModelHeader, offset, number);
    const std::string error = refusal(archive);
    EXPECT_NE(error.find("member 'model/model.bin': header field '" + std::string(field) +
                         "' is a base-256 number; a bundle writes numbers in octal only"),
              std::string::npos)
        << field << ": " << error;
  }
}

TEST(Archive, RefusesTheOldRegularFileType) {
  std::vector<uint8_t> archive = sample_archive();
  set_field(archive, kModelHeader, 156, std::string(1, '\0'));
  EXPECT_NE(refusal(archive).find("member 'model/model.bin' has type NUL"), std::string::npos);
}

TEST(Archive, GivesEveryMemberTheSameMtimeAndRefusesOneItCannotWrite) {
  const uint64_t largest = (uint64_t{1} << 33) - 1;  // 11 octal digits
  EXPECT_TRUE(write_archive(sample_members(), static_cast<int64_t>(largest)).ok());
  auto too_late = write_archive(sample_members(), static_cast<int64_t>(largest + 1));
  ASSERT_FALSE(too_late.ok());
  EXPECT_NE(too_late.error().message.find("modification time"), std::string::npos);
}

}  // namespace
}  // namespace cyclecast::bundle
